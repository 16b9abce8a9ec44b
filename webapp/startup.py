"""What the server and the server worker do before they serve: the system checks.

`ready()` runs once Django is set up and refuses to start on a system check error, as
`manage.py runserver` would (the development secret key outside DEBUG, for one).
"""

import sys


def ready() -> None:
    """Exit with the checks' message on an error."""
    from django.core.management.base import BaseCommand, SystemCheckError

    try:
        BaseCommand().check(display_num_errors=False)
    except SystemCheckError as error:
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(1) from None
