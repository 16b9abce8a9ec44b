import pytest

from tests.support import start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real server process for the session (its own database and data dir)."""
    process = start_server(tmp_path_factory.mktemp("server"))
    yield process
    process.stop()
    process.drop_database()
