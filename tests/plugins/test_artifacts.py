from webapp.core.models import Artifact


def test_artifacts_show_size_hash_preview_and_a_download_link_once_ready(admin_client, task):
    common = {"task": task, "kind": "json", "size": 2048, "sha256": "b" * 64}
    Artifact.objects.create(
        name="ready-one", filename="r.json", url="http://x/files/1/r.json", state="ready",
        preview='{"a": 1}', **common,
    )  # fmt: skip
    Artifact.objects.create(
        name="pending-one", filename="p.json", url="http://x/files/2/p.json", **common
    )
    body = admin_client.get(f"/tasks/{task.id}/artifacts/").content.decode()
    assert "ready-one" in body and "pending-one" in body
    assert "2.0\xa0KB" in body
    assert "b" * 64 in body
    assert "{&quot;a&quot;: 1}" in body
    assert 'href="http://x/files/1/r.json"' in body
    assert 'href="http://x/files/2/p.json"' not in body  # not downloadable while pending
