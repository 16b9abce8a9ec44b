"""Mounted at /clearml-api/: every path goes to the one dispatch view, which answers unknown
endpoints with a 404 in ClearML's envelope (never Django's HTML page, never a redirect)."""

from django.urls import re_path

from .dispatch import api_view

app_name = "compat"

urlpatterns = [
    re_path(r"^(?P<path>.*)$", api_view, name="api"),
]
