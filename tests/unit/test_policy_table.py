"""R52: no endpoint exists outside the policy table (webapp/core/policy.py), and the table
documented in docs/architecture.md is the one in the code."""

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from webapp.api import checks
from webapp.api.views import TaskViewSet
from webapp.compat import registry
from webapp.core import keys, policy

DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_a_clearml_endpoint_cannot_be_registered_without_a_verb_of_the_table():
    with pytest.raises(LookupError, match="not a verb"):
        registry.endpoint("tasks.invented", verb="task.invent")
    with pytest.raises(TypeError):
        registry.endpoint("tasks.invented")  # the verb is required
    with pytest.raises(LookupError, match="registered twice"):
        registry.endpoint("tasks.edit", verb="task.edit")(lambda call: {})
    assert "tasks.invented" not in registry.HANDLERS


def test_every_registered_endpoint_and_routed_rest_action_names_a_verb_of_the_table():
    assert set(registry.VERBS) == set(registry.HANDLERS)
    assert set(registry.VERBS.values()) <= set(policy.VERBS)
    assert checks.unnamed_verbs() == []


def test_a_rest_action_without_a_verb_fails_the_check_and_is_refused(db, monkeypatch):
    monkeypatch.setattr(
        TaskViewSet, "verbs", {k: v for k, v in TaskViewSet.verbs.items() if k != "list"}
    )
    errors = checks.every_action_names_a_verb(None)
    assert errors and {e.id for e in errors} == {"api.E001"}
    assert all("-> TaskViewSet.list " in e.msg for e in errors), [e.msg for e in errors]
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {keys.create_api_key(admin)[1]}")
    response = client.get("/api/v1/tasks/")
    assert response.status_code == 403
    assert "names no verb" in response.json()["detail"]


def test_the_documented_table_is_the_one_in_the_code():
    text = DOCS.read_text()
    for verb in policy.VERBS.values():
        row = next(
            (line for line in text.splitlines() if line.startswith(f"| `{verb.name}` |")), ""
        )
        assert row, f"docs/architecture.md has no row for {verb.name}"
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        rules = [verb.rule(kind) or "—" for kind in policy.KINDS]
        assert cells[1:5] == rules, (verb.name, cells[1:5], rules)
        for name, registered in registry.VERBS.items():
            if registered == verb.name:
                assert f"`{name}`" in cells[6], (name, verb.name)
