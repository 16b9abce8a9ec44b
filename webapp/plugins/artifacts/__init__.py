"""The Artifacts tab: what a task stored, with previews and download links."""
