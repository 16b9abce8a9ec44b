"""Where the SDK finds its server and key: environment first, then the login file."""

import json
import os
from dataclasses import dataclass
from pathlib import Path


def config_path() -> Path:
    override = os.environ.get("PIPELINES_CONFIG_FILE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pipelines" / "config.json"


def cache_dir() -> Path:
    override = os.environ.get("PIPELINES_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipelines"


@dataclass(frozen=True)
class ClientConfig:
    api_url: str
    api_key: str


class ConfigurationError(RuntimeError):
    pass


def load_config() -> ClientConfig:
    """PIPELINES_API_URL / PIPELINES_API_KEY win over the file `pipelines login` wrote."""
    stored: dict = {}
    path = config_path()
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"cannot read {path}: {error}") from error
    api_url = os.environ.get("PIPELINES_API_URL") or stored.get("api_url") or ""
    api_key = os.environ.get("PIPELINES_API_KEY") or stored.get("api_key") or ""
    if not api_url or not api_key:
        raise ConfigurationError(
            "no server configured: set PIPELINES_API_URL and PIPELINES_API_KEY, "
            "or run `pipelines login`"
        )
    return ClientConfig(api_url=api_url.rstrip("/"), api_key=api_key)


def save_config(api_url: str, api_key: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created 0600, so the key is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"api_url": api_url.rstrip("/"), "api_key": api_key}, handle, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
