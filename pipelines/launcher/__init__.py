"""The `pipelines` command and what it starts on one machine: `up`, the embedded broker,
the demo."""
