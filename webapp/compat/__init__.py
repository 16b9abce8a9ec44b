"""ClearML wire compatibility: the official `clearml` SDK and agent talk to our server.

`/clearml-api/` speaks ClearML's REST protocol and `/clearml-files/` its file server; every
handler maps onto webapp.core.services and our models, so there is one copy of task logic.
"""
