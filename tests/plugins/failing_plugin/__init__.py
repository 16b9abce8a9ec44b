"""A deliberately broken dashboard plugin: every hook it offers raises.

Installed in tests through PIPELINES_EXTRA_PLUGINS (a server process) or override_settings,
to show that a broken plugin costs only its own box on the page.
"""
