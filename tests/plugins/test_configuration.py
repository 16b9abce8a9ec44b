from webapp.core import services


def test_a_draft_shows_a_form_and_saving_goes_through_set_hyperparameters(admin_client, task):
    page = admin_client.get(f"/tasks/{task.id}/configuration/")
    assert b'id="hyperparameters-form"' in page.content
    rows = page.context["row_count"]
    form = {"rows": str(rows)}
    for section in page.context["sections"].values():
        for row in section:
            i = row["index"]
            form.update(
                {
                    f"section-{i}": row["section"],
                    f"name-{i}": row["name"],
                    f"value-{i}": "0.5" if row["name"] == "lr" else row["value"],
                    f"type-{i}": row["type"],
                    f"description-{i}": row["description"],
                }
            )
            if row["name"] == "seed":
                form[f"delete-{i}"] = "1"
    form.update({f"name-{rows}": "momentum", f"value-{rows}": "0.9", f"type-{rows}": "float"})
    response = admin_client.post(f"/tasks/{task.id}/hyperparameters/", form)
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.hyperparameters == {
        "General": {
            "lr": {"value": "0.5", "type": "float", "description": ""},
            "epochs": {"value": "3", "type": "int", "description": ""},
            "momentum": {"value": "0.9", "type": "float", "description": ""},
        }
    }


def test_a_task_that_ran_is_read_only_and_a_forced_post_changes_nothing(admin_client, task):
    services.enqueue_task(task, "default")
    page = admin_client.get(f"/tasks/{task.id}/configuration/")
    assert b'id="hyperparameters-form"' not in page.content
    assert b"read-only" in page.content
    response = admin_client.post(
        f"/tasks/{task.id}/hyperparameters/",
        {"rows": "0", "name-0": "x", "value-0": "1"},
        follow=True,
    )
    assert b"edit is not possible now" in response.content
    task.refresh_from_db()
    assert "x" not in task.hyperparameters.get("General", {})


def test_the_badge_counts_parameters(admin_client, task):
    page = admin_client.get(f"/tasks/{task.id}/")
    badges = {entry["tab"].slug: entry["badge"] for entry in page.context["tabs"]}
    assert badges["configuration"] == 3
