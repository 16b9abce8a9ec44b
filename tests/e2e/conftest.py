import pytest

from tests.support import start_cluster, start_server


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
