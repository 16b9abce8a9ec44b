"""The Console tab: the task's output, tailed live."""
