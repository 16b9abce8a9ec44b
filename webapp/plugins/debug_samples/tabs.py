from django.db.models import Max
from django.urls import reverse

from webapp.dashboard.plugin_api import TaskTab, is_running, media_kind

# The newest iterations first; older ones are rarely looked at and cost a request each.
MAX_SAMPLES = 200


def get_context(request, task) -> dict:
    seq = task.debug_samples.aggregate(m=Max("seq"))["m"] or 0  # before the rows, as plots
    samples = task.debug_samples.order_by("title", "series", "-iteration")[:MAX_SAMPLES]
    groups: dict[str, list] = {}
    for sample in samples:
        # Stored bytes come from the dashboard's own URL; media reported by URL stays there.
        sample.kind = media_kind(sample.content_type)
        # One kept only as a location this server cannot fetch (s3://...) shows that text.
        stored = reverse("dashboard:debug_sample", args=[task.id, sample.id])
        sample.src = sample.url or (stored if sample.storage_key else "")
        groups.setdefault(sample.title, []).append(sample)
    return {
        "groups": groups,
        "limit": MAX_SAMPLES,
        "seq": seq,
        "live": is_running(task),
        "since_url": reverse("api:task-results-samples-since", kwargs={"pk": task.id}),
    }


def count(task) -> int:
    return task.debug_samples.count()


tabs = [
    TaskTab(
        slug="debug-samples",
        label="Debug samples",
        group="Results",
        order=80,
        template="plugins/debug_samples/tab.html",
        get_context=get_context,
        badge=count,
    )
]
