from django.core.files.base import ContentFile

from webapp.core.models import DebugSample
from webapp.core.storage import artifact_storage

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def _sample(task, name, content_type):
    key = artifact_storage().save(f"tasks/{task.id}/samples/{name}", ContentFile(PNG))
    return DebugSample.objects.create(
        task=task, title="images", series=name, storage_key=key, content_type=content_type
    )


def test_samples_are_listed_images_served_inline_html_sandboxed_anything_else_as_download(
    admin_client, task, stranger_client, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    image = _sample(task, "img.png", "image/png")
    page = _sample(task, "page.html", "text/html")
    other = _sample(task, "blob.bin", "application/x-msdownload")
    body = admin_client.get(f"/tasks/{task.id}/debug-samples/").content.decode()
    assert f"/tasks/{task.id}/samples/{image.id}/" in body
    inline = admin_client.get(f"/tasks/{task.id}/samples/{image.id}/")
    assert inline["Content-Type"] == "image/png"
    assert b"".join(inline.streaming_content) == PNG
    # an HTML sample runs in no origin of ours: it can read nothing of the dashboard
    sandboxed = admin_client.get(f"/tasks/{task.id}/samples/{page.id}/")
    assert sandboxed["Content-Type"] == "text/html"
    assert sandboxed["Content-Security-Policy"] == "sandbox allow-scripts"
    assert sandboxed["X-Content-Type-Options"] == "nosniff"
    download = admin_client.get(f"/tasks/{task.id}/samples/{other.id}/")
    assert download["Content-Type"] == "application/octet-stream"
    assert "attachment" in download["Content-Disposition"]
    assert stranger_client.get(f"/tasks/{task.id}/samples/{image.id}/").status_code == 404


def test_a_sample_kept_only_as_a_location_is_shown_as_text_and_never_linked(admin_client, task):
    kept = DebugSample.objects.create(
        task=task, title="images", series="s3", location="s3://bucket/<b>a.png"
    )
    told = DebugSample.objects.create(task=task, title="images", series="unsaid", iteration=1)
    body = admin_client.get(f"/tasks/{task.id}/debug-samples/").content.decode()
    assert "s3://bucket/&lt;b&gt;a.png" in body and "<b>a.png" not in body
    assert "Reported without saying where it is." in body
    for sample in (kept, told):
        assert f"/tasks/{task.id}/samples/{sample.id}/" not in body
        assert admin_client.get(f"/tasks/{task.id}/samples/{sample.id}/").status_code == 404
