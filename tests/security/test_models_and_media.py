"""Models and media: who may write them, what is stored, how their bytes are served
(R87, R88)."""

import hashlib

from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.core.models import TrainedModel

WEIGHTS = b"weights" * 100


def _declare(client, task_id, name="net"):
    return client.post(
        f"/api/v1/tasks/{task_id}/models/",
        {"name": name, "filename": "net.bin", "size": len(WEIGHTS), "framework": "PyTorch"},
        format="json",
    )


def _upload(client, model_id, body):
    return client.put(
        f"/api/v1/models/{model_id}/content/", body, content_type="application/octet-stream"
    )


def test_a_task_key_writes_models_of_its_own_task_only_and_others_see_none(
    world, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    running, base = world.objects["running"], world.objects["base"]
    step = world.client("task")
    assert _declare(step, base.id).status_code == 403
    declared = _declare(step, running.id)
    assert declared.status_code == 201, declared.content
    model_id = declared.json()["id"]
    # a worker key may not upload weights; bob may not even see the model
    assert _upload(world.client("worker"), model_id, WEIGHTS).status_code == 403
    bob = world.client("bob")
    assert bob.get(f"/api/v1/models/{model_id}/").status_code == 404
    assert _upload(bob, model_id, WEIGHTS + hashlib.sha256(WEIGHTS).digest()).status_code == 404
    assert bob.get("/api/v1/models/").json()["results"] == []
    assert _declare(bob, running.id).status_code == 404
    stored = _upload(step, model_id, WEIGHTS + hashlib.sha256(WEIGHTS).digest())
    assert stored.status_code == 200 and stored.json()["state"] == "ready", stored.content
    alice = world.client("alice")
    assert [m["id"] for m in alice.get("/api/v1/models/").json()["results"]] == [model_id]
    # input models: only a model the caller can see may be connected
    assert (
        world.client("task")
        .post(f"/api/v1/tasks/{running.id}/input-models/", {"model": "f" * 32}, format="json")
        .status_code
        == 404
    )


def test_model_weights_are_kept_only_when_their_trailing_sha256_matches(world, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    step = world.client("task")
    model_id = _declare(step, world.objects["running"].id).json()["id"]
    wrong = _upload(step, model_id, WEIGHTS + hashlib.sha256(b"other").digest())
    assert wrong.status_code == 400
    short = _upload(step, model_id, WEIGHTS[:-1])
    assert short.status_code == 400
    model = TrainedModel.objects.get(pk=model_id)
    assert model.state == "pending" and not model.storage_key
    assert step.get(f"/api/v1/models/{model_id}/download/").status_code == 409


def test_html_and_svg_media_are_sandboxed_through_the_api_and_other_types_refused(
    world, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    running = world.objects["running"]
    step = world.client("task")
    url = f"/api/v1/tasks/{running.id}/samples/"
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    for name, body, content_type in (
        ("page.html", b"<script>alert(1)</script>", "text/html"),
        ("drawing.svg", svg, "image/svg+xml"),
    ):
        upload = SimpleUploadedFile(name, body, content_type=content_type)
        created = step.post(url, {"title": "media", "series": name, "file": upload})
        assert created.status_code == 201, created.content
        served = world.client("alice").get(f"/api/v1/samples/{created.json()['id']}/")
        assert served["Content-Type"] == content_type
        assert served["Content-Security-Policy"] == "sandbox allow-scripts"
        assert served["X-Content-Type-Options"] == "nosniff"
    script = SimpleUploadedFile("run.sh", b"rm -rf /", content_type="application/x-sh")
    refused = step.post(url, {"title": "media", "series": "sh", "file": script})
    assert refused.status_code == 400
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "x" * 3000):
        linked = step.post(url, {"title": "m", "series": "u", "url": bad}, format="json")
        assert linked.status_code == 400, bad


def test_numbers_past_64_bits_are_refused_not_a_server_error(world):
    step, running = world.client("task"), world.objects["running"]
    huge = 24786431122994130457722880
    declared = step.post(
        f"/api/v1/tasks/{running.id}/models/",
        {"name": "n", "filename": "n.bin", "size": 1, "iteration": huge},
        format="json",
    )
    assert declared.status_code == 400
    url = f"/api/v1/tasks/{running.id}/samples/"
    linked = step.post(
        url,
        {"title": "m", "series": "u", "url": "http://127.0.0.1:9/a.png", "iteration": huge},
        format="json",
    )
    assert linked.status_code == 400
    upload = SimpleUploadedFile("a.png", b"\x89PNG", content_type="image/png")
    sent = step.post(url, {"title": "m", "series": "f", "iteration": str(huge), "file": upload})
    assert sent.status_code == 400
    event = {"type": "scalar", "title": "t", "series": "s", "iteration": huge, "value": 1}
    batch = step.post(f"/api/v1/tasks/{running.id}/events/", {"events": [event]}, format="json")
    assert batch.status_code == 400
