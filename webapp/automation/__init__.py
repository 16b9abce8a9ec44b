"""Schedules and triggers that run on the server: no client loops, no services-queue task."""
