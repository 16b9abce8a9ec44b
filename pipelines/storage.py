"""StorageManager: fetch and place files by URL, with a local cache keyed by content."""

import hashlib
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .client import ApiError, get_client
from .config import cache_dir


class StorageError(RuntimeError):
    pass


def _cache_path(url: str, content_hash: str | None) -> Path:
    basename = Path(unquote(urlsplit(url).path)).name or "download"
    url_key = hashlib.sha256(url.encode()).hexdigest()[:32]
    folder = cache_dir() / "storage" / url_key / (content_hash or "nohash")
    return folder / basename


class StorageManager:
    """ClearML's StorageManager: server URLs, file://, plain paths, s3:// and public http(s)."""

    @staticmethod
    def get_local_copy(remote_url: str, extract_archive: bool = False, force_download=False):
        """A local path holding the bytes at `remote_url` (cached: same content, no download)."""
        scheme = urlsplit(remote_url).scheme.lower()
        if scheme in ("", "file"):
            path = _local_path(remote_url, scheme)
            if not path.exists():
                raise StorageError(f"no such file: {path}")
            return str(path)
        if scheme == "s3":
            return str(_s3_download(remote_url, force_download))
        if scheme not in ("http", "https"):
            raise StorageError(f"unsupported URL scheme {scheme!r} in {remote_url}")
        client = get_client()
        content_hash = client.head_sha256(remote_url) if client.owns_url(remote_url) else None
        target = _cache_path(remote_url, content_hash)
        if target.exists() and content_hash and not force_download:
            return str(target)
        try:
            # hashed as it arrives: a mismatch leaves nothing at target
            client.download(remote_url, target, expected_sha256=content_hash)
        except ApiError as error:
            if error.code != "sha256_mismatch":
                raise
            raise StorageError(str(error.detail)) from error
        return str(target)

    @staticmethod
    def upload_file(local_file: str, remote_url: str, wait_for_upload: bool = True) -> str:
        """Copy a local file to `remote_url` (a path, file:// or s3://); returns the URL."""
        source = Path(local_file)
        if not source.is_file():
            raise StorageError(f"no such file: {local_file}")
        scheme = urlsplit(remote_url).scheme.lower()
        if scheme in ("", "file"):
            dest = _local_path(remote_url, scheme)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            return remote_url
        if scheme == "s3":
            bucket, key = _s3_parts(remote_url)
            _s3_client().upload_file(str(source), bucket, key)
            return remote_url
        raise StorageError(
            f"cannot upload to {remote_url}: use task.upload_artifact() to store files on the "
            "server, or a file:// or s3:// destination"
        )


def _local_path(url: str, scheme: str) -> Path:
    return Path(unquote(urlsplit(url).path)) if scheme == "file" else Path(url)


def _s3_parts(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def _s3_client():
    try:
        import boto3
    except ImportError as error:
        raise StorageError("s3:// URLs need boto3: pip install boto3") from error
    import os

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_S3_ENDPOINT_URL") or None)


def _s3_download(url: str, force: bool) -> Path:
    bucket, key = _s3_parts(url)
    client = _s3_client()
    etag = client.head_object(Bucket=bucket, Key=key).get("ETag", "").strip('"')
    target = _cache_path(url, etag or None)
    if target.exists() and etag and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    client.download_file(bucket, key, str(target))
    return target
