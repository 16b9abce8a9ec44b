from pathlib import Path

import pytest

from tests.support import start_cluster, start_server

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real server process for the session (its own database and data dir)."""
    process = start_server(tmp_path_factory.mktemp("server"))
    yield process
    process.stop()
    process.drop_database()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A broker, a server, the server worker (sweeping every 0.5 s, 2 s leases); tests start
    the step workers they need with `cluster.start_worker(queue)`."""
    running = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def base(cluster) -> str:
    """The registered fault step (scripts/fault_step.py), the base task fault tests clone."""
    return cluster.register(SCRIPTS / "fault_step.py")


@pytest.fixture(autouse=True)
def release_steps(request):
    """After each test, every handshake file its module's steps may wait on (the module's
    HANDSHAKE_FILES, in the test's tmp_path) is created: a failing test must not leave a
    step waiting on a worker that later tests share."""
    names = getattr(request.module, "HANDSHAKE_FILES", ())
    folder = request.getfixturevalue("tmp_path") if names else None
    yield
    for name in names:
        (folder / name).touch()
