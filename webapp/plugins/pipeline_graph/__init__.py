"""The Pipeline tab of a controller task: its run's live DAG."""
