"""The Execution tab: script, code, requirements and where it ran."""
