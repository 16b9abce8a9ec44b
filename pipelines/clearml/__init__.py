"""Running tasks created by the official `clearml` SDK on our workers."""
