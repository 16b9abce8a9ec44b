"""What the server and the server worker do before they serve: checks and private files.

`begin()` runs before Django loads (so the data dir and everything made from then on are
private whatever the umask); `ready()` after, refusing to start on a system check error, as
`manage.py runserver` would (the development secret key outside DEBUG, for one).
"""

import sys

from webapp.private_files import make_private, restrict_umask


def begin() -> None:
    restrict_umask()


def ready() -> None:
    """Exit with the checks' message on an error; fix the data dir's modes otherwise."""
    from django.conf import settings
    from django.core.management.base import BaseCommand, SystemCheckError

    try:
        BaseCommand().check(display_num_errors=False)
    except SystemCheckError as error:
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    make_private(settings.DATA_DIR)
