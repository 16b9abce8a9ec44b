"""R69: every endpoint of the ClearML door (/clearml-api/, webapp.compat.registry.HANDLERS)
fuzzed against a live server, bounded by count and deterministic (derandomized hypothesis,
no example database): bodies of the protocol's field names with values of every JSON shape.
No answer may be a 500, in the HTTP status or in the envelope's result_code."""

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import start_live

pytestmark = pytest.mark.e2e

EXAMPLES_PER_ENDPOINT = 30


def _endpoints() -> list[str]:
    import webapp.compat.handlers  # noqa: F401 - registers the handlers
    from webapp.compat.registry import HANDLERS

    return sorted(HANDLERS)


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    server = start_live(tmp_path_factory, "fuzz-clearml")
    key = server.extra["alice"]
    made = server.api(key).post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "alice/fuzz", "name": "fuzz target", "start_running": True},
    )
    assert made.status_code == 201, made.text
    server.extra["task"] = made.json()["id"]
    server.extra["project"] = made.json()["project"]
    yield server
    server.stop()
    server.drop_database()


FIELDS = [
    "task", "tasks", "id", "ids", "name", "comment", "tags", "system_tags", "type", "project",
    "parent", "status", "status_reason", "status_message", "force", "queue", "queue_name",
    "hyperparams", "configuration", "runtime", "script", "execution", "container", "output",
    "models", "artifacts", "model", "uri", "metadata", "labels", "design", "page", "page_size",
    "size", "only_fields", "order_by", "search_text", "_all_", "_any_", "iter", "metric",
    "variant", "value", "msg", "level", "worker", "timestamp", "events", "replace_hyperparams",
    "replace_configuration", "new_task_name", "new_task_comment", "new_task_tags",
    "new_task_project", "new_project_name", "new_task_hyperparams", "new_task_configuration",
    "names", "expiration_sec", "description", "default_output_destination", "ready", "batch_size",
    "shallow_search", "basename", "search_hidden", "include_stats", "include_stats_filter",
    "stats_for_state", "stats_with_children", "check_own_contents", "include_dataset_stats",
    "children_type", "children_tags", "children_tags_filter", "active_users",
    "include_subprojects", "project_name", "report", "report_assets", "args",
    "verify_watched_queue", "projects", "datasets", "reports", "pipelines",
]  # fmt: skip


def _bodies(task_id: str, project_id: str):
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=40)
        | st.sampled_from([task_id, project_id, "default", "-created", "General", "__$all"])
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
    return st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)


@pytest.mark.parametrize("endpoint", _endpoints())
def test_no_clearml_endpoint_answers_500_to_generated_bodies(door, endpoint):
    headers = {
        "Authorization": f"Bearer {door.extra['alice']}",
        "Content-Type": "application/json",
    }
    session = requests.Session()
    log_start = door.log_path.stat().st_size

    @settings(
        max_examples=EXAMPLES_PER_ENDPOINT,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=_bodies(door.extra["task"], door.extra["project"]))
    def check(body):
        response = session.post(
            f"{door.url}/clearml-api/{endpoint}", data=json.dumps(body), headers=headers, timeout=30
        )
        assert response.status_code < 500, (endpoint, body, response.text[:500])
        meta = response.json()["meta"]
        assert meta["result_code"] < 500, (endpoint, body, meta)

    check()
    log = door.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "unexpected error in" not in log, log[log.find("unexpected error in") :][:3000]
