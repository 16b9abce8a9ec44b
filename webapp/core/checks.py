"""Configuration problems as system checks with stable ids."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security)
def secret_key_check(app_configs, **kwargs):
    """The public development key signs sessions and ClearML tokens anyone could forge.

    Run by every command and at the start of the server and the server worker
    (webapp/startup.py): outside DEBUG it is an error, so they refuse to start with it.
    """
    dev_key = settings.DEV_SECRET_KEY
    if settings.SECRET_KEY != dev_key and dev_key not in settings.SECRET_KEY_FALLBACKS:
        return []
    if settings.SECRET_KEY_PROBLEM:
        why = (
            f"the install's own secret ({settings.SECRET_KEY_FILE}) could not be read or "
            f"made: {settings.SECRET_KEY_PROBLEM}"
        )
    elif settings.SECRET_KEY != dev_key:
        why = "SECRET_KEY_FALLBACKS holds it"
    else:
        why = "SECRET_KEY is set to it"
    message = (
        f"The public development secret key is in use ({why}): anyone can forge "
        "sessions and ClearML tokens with it."
    )
    hint = (
        f"Unset SECRET_KEY to use the install's own secret in {settings.SECRET_KEY_FILE} "
        "(made on first start), or set SECRET_KEY to 50+ random characters."
    )
    if settings.DEBUG:
        return [Warning(message, hint=hint, id="pipelines.W001")]
    return [Error(message + " Refusing it outside DEBUG.", hint=hint, id="pipelines.E002")]


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
