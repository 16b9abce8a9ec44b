"""The Info tab: ids, status, timestamps, lineage and runtime properties."""
