"""Configuration problems as system checks with stable ids."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def secret_key_check(app_configs, **kwargs):
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return [
            Warning(
                "SECRET_KEY is the development default.",
                hint="Set SECRET_KEY in the environment.",
                id="pipelines.W001",
            )
        ]
    return []


@register()
def artifact_storage_check(app_configs, **kwargs):
    if settings.ARTIFACT_STORAGE not in ("file", "s3", "gcs", "azure"):
        return [
            Error(
                f"ARTIFACT_STORAGE={settings.ARTIFACT_STORAGE!r} is not file, s3, gcs or azure.",
                id="pipelines.E001",
            )
        ]
    return []
