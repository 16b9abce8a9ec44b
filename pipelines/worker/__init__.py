"""The step worker, `pipelines worker`: what runs on the machines that run steps.

It reaches the server only over REST and the broker, and imports no Django.
"""
