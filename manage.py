#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    from webapp.private_files import restrict_umask

    # What commands write (a new SQLite database, for one) is private to its owner.
    restrict_umask()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
