"""A pytest plugin that points clearml-server's own API tests at a server of ours.

Loaded with `-p bench.clearml_conformance_plugin` into the interpreter that runs that suite
(see bench/clearml_conformance.py). The suite's client is built for a server on
`http://localhost:8008` with keys from its configuration; this plugin rewrites that address
to CONFORMANCE_API_URL and hands the client CONFORMANCE_ACCESS_KEY/CONFORMANCE_SECRET_KEY.
It imports no Django and nothing of ours, only the suite's own client.
"""

import os
import tempfile

HARD_CODED = "http://localhost:8008"


def pytest_configure(config):
    # The suite's logging configuration writes to /var/log/clearml; keep it in a temp file.
    log_file = os.path.join(tempfile.gettempdir(), "clearml-conformance.log")
    os.environ.setdefault("CLEARML__LOGGING__HANDLERS__TEXT_FILE__FILENAME", f'"{log_file}"')
    os.environ.setdefault("SM_API_KEY", os.environ["CONFORMANCE_ACCESS_KEY"])
    os.environ.setdefault("SM_API_SECRET", os.environ["CONFORMANCE_SECRET_KEY"])
    target = os.environ["CONFORMANCE_API_URL"].rstrip("/")

    from apiserver.tests import api_client

    original_init = api_client.APIClient.__init__

    def init(self, *args, base_url=None, **kwargs):
        if base_url and base_url.startswith(HARD_CODED):
            base_url = target + base_url[len(HARD_CODED) :]
        original_init(self, *args, base_url=base_url, **kwargs)

    api_client.APIClient.__init__ = init
