"""Built-in dashboard plugins. Each has the shape a third-party plugin has; see docs/plugins.md."""
