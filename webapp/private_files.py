"""An installation's files are its owner's alone: the umask, the data dir's modes, the secret.

Imported by settings.py, so nothing here imports Django. The data dir holds the database
(SQLite: session keys, key hashes), the embedded broker's files, logs, credentials and the
install's secret; whatever the umask of the shell that started us, none of it is readable by
other users of the machine.
"""

import os
import secrets
import stat
import tempfile
from pathlib import Path

# Files we create are 0600 and folders 0700.
PRIVATE_UMASK = 0o077
# Django asks for 50+ characters (security.W009); 48 random bytes give 64.
SECRET_BYTES = 48
MIN_SECRET_CHARS = 50


def restrict_umask() -> None:
    """Called first thing by every server-side process we start, before it creates a file."""
    os.umask(PRIVATE_UMASK)


def make_private(root: Path) -> int:
    """Take group and other bits off `root` and everything under it (owner bits stay).

    Fixes what an older version or a looser umask left behind; symlinks are not followed.
    Returns how many entries changed.
    """
    changed = 0
    stack = [Path(root)]
    while stack:
        path = stack.pop()
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & 0o077 and (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            try:
                os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
                changed += 1
            except OSError:
                pass  # not ours (e.g. left by another user): nothing to do from here
        if stat.S_ISDIR(info.st_mode):
            try:
                stack.extend(path.iterdir())
            except OSError:
                pass
    return changed


def install_secret(path: Path) -> str:
    """The install's own secret key, kept in `path` (0600); made on the first call.

    Made atomically: the secret is written to a private temporary file which is then
    hard-linked to `path`, which fails if it exists. So processes starting at the same time
    all end up reading the one that won. Raises OSError or ValueError when it can be neither
    read nor made; settings.py turns that into a system check error.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the install's secret
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    with open(path) as handle:
        if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
            os.fchmod(handle.fileno(), 0o600)
        value = handle.read().strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{path} holds {len(value)} characters, fewer than {MIN_SECRET_CHARS}: "
            "delete it and a new secret is made on the next start"
        )
    return value
