"""Create the admin user, the default queues and keys for a fresh installation."""

import json
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from webapp.core import keys, services
from webapp.core.choices import ApiKeyKind


class Command(BaseCommand):
    help = "Create (or reuse) the admin user, default queues, a user key and a worker key."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="")
        parser.add_argument("--json", action="store_true", help="print credentials as JSON")

    def handle(self, *args, username, password, **options):
        services.ensure_default_queues()
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if created:
            password = password or secrets.token_urlsafe(12)
            user = user_model.objects.create_superuser(username=username, password=password)
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
        _, user_key = keys.create_api_key(user, kind=ApiKeyKind.USER, name="bootstrap")
        _, worker_key = keys.create_api_key(user, kind=ApiKeyKind.WORKER, name="bootstrap worker")
        result = {
            "username": username,
            "password": password if (created or password) else None,
            "api_key": user_key,
            "worker_key": worker_key,
        }
        if options["json"]:
            self.stdout.write(_dumps(result))
        else:
            for name, value in result.items():
                self.stdout.write(f"{name}: {value if value is not None else '(unchanged)'}")


def _dumps(value) -> str:
    return json.dumps(value)
