"""An example third-party dashboard plugin: a "Lineage" tab on every task page."""
