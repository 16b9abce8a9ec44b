"""Artifacts on S3 (ARTIFACT_STORAGE=s3) through a real server and moto's standalone S3 server."""

import hashlib
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests

from tests.support import free_port, run_script, start_server, wait_until

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"
BUCKET = "pipelines-e2e"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return requests.get(f"{endpoint}/moto-api/", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, timeout=60, message="moto S3 server")
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def _s3(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, s3_endpoint):
    process = start_server(
        tmp_path_factory.mktemp("s3-server"),
        ARTIFACT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME=BUCKET,
        AWS_S3_ENDPOINT_URL=s3_endpoint,
        AWS_S3_REGION_NAME="us-east-1",
        **CREDENTIALS,
    )
    yield process
    process.stop()
    process.drop_database()


def _objects(endpoint: str) -> dict[str, bytes]:
    client = _s3(endpoint)
    listing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listing
    }


def test_artifacts_are_stored_in_the_bucket_verified_and_read_back(
    s3_server, s3_endpoint, tmp_path
):
    # given a step that uploads every kind of artifact to a server whose storage is S3
    blob = tmp_path / "blob.bin"
    upload = run_script(SCRIPTS / "upload_artifacts.py", s3_server.sdk_env(), args=[str(blob)])
    assert upload.returncode == 0, upload.stderr
    task_id = upload.stdout.split("TASK_ID ")[1].split()[0]

    # then another process reads each of them back identical
    read = run_script(SCRIPTS / "read_artifacts.py", s3_server.sdk_env(), args=[str(blob)])
    assert read.returncode == 0, read.stderr
    assert "ALL EQUAL" in read.stdout

    # and every ready artifact's bytes are in the bucket, with the size and sha256 recorded
    rows = s3_server.api().get(f"{s3_server.url}/api/v1/tasks/{task_id}/artifacts/").json()
    assert {row["state"] for row in rows} == {"ready"}
    objects = _objects(s3_endpoint)
    stored = {hashlib.sha256(body).hexdigest(): len(body) for body in objects.values()}
    for row in rows:
        assert stored.get(row["sha256"]) == row["size"], (row["name"], sorted(objects))
    # keys are built from ids under the configured location; a name adds only a safe basename
    prefix = f"artifacts/tasks/{task_id}/artifacts/"
    for key in objects:
        assert key.startswith(prefix) and ".." not in key.split("/"), key
    # and nothing landed on the server's local disk instead
    local = s3_server.data_dir / "artifacts"
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))


def test_storage_manager_copies_to_and_from_s3_urls(s3_server, s3_endpoint, tmp_path):
    # given a local file and an s3:// destination
    source = tmp_path / "weights.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    script = tmp_path / "s3_round_trip.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from pipelines import StorageManager\n"
        f"url = StorageManager.upload_file(sys.argv[1], 's3://{BUCKET}/models/weights.bin')\n"
        "copy = StorageManager.get_local_copy(remote_url=url)\n"
        "print('URL', url)\n"
        "print('SAME', Path(copy).read_bytes() == Path(sys.argv[1]).read_bytes())\n"
    )
    env = s3_server.sdk_env(AWS_S3_ENDPOINT_URL=s3_endpoint, **CREDENTIALS)
    # when the SDK uploads it and gets a local copy back
    result = run_script(script, env, args=[str(source)])
    # then the object is in the bucket and the copy is identical
    assert result.returncode == 0, result.stderr
    assert f"URL s3://{BUCKET}/models/weights.bin" in result.stdout
    assert "SAME True" in result.stdout
    assert _objects(s3_endpoint)["models/weights.bin"] == source.read_bytes()
