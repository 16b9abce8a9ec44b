"""workers.get_stats, get_activity_report and get_metric_keys: the workers' charts.

clearml-server keeps each `workers.status_report`'s machine statistics in Elasticsearch; we
keep them in WorkerStatsReport rows (bounded: compat/models.py) and aggregate them here in
time buckets of `interval` seconds (at least MIN_INTERVAL, as clearml-server), aligned on
the epoch. Only complete buckets are answered: the one that reaches past `to_date` is not.
"""

import math
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.core import limits

from ..envelope import ApiError, bad_request
from ..models import WorkerStatsReport
from ..query import as_list
from ..registry import endpoint

# clearml-server's MachineStats: per device (a list, its index the variant) or one value.
METRICS = (
    "cpu_usage",
    "cpu_temperature",
    "gpu_usage",
    "gpu_temperature",
    "gpu_memory_free",
    "gpu_memory_used",
    "memory_used",
    "memory_free",
    "network_tx",
    "network_rx",
    "disk_free_home",
    "disk_free_temp",
    "disk_read",
    "disk_write",
)
MAX_DEVICES = 64
MIN_INTERVAL = 40
MAX_BUCKETS = 10_000
AGGREGATIONS = {
    "avg": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def machine_stats(raw) -> dict:
    """The known statistics of a report, numbers only (anything else is left out)."""
    if not isinstance(raw, dict):
        return {}
    stats = {}
    for metric in METRICS:
        value = raw.get(metric)
        if isinstance(value, list):
            numbers = [_number(v) for v in value[:MAX_DEVICES]]
            if numbers and None not in numbers:
                stats[metric] = numbers
        elif _number(value) is not None:
            stats[metric] = _number(value)
    return stats


def record(worker: str, body: dict) -> None:
    """Keep a status report's machine statistics, and drop what is past the bounds."""
    stats = machine_stats(body.get("machine_stats"))
    if not stats:
        return
    timestamp = body.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        timestamp = int(time.time() * 1000)
    row = WorkerStatsReport.objects.create(
        worker=worker,
        timestamp=limits.integer("timestamp", timestamp, 0, 2**62),
        task=str(body.get("task") or "")[:32],
        stats=stats,
    )
    cutoff = timezone.now() - timedelta(hours=settings.CLEARML_WORKER_STATS_HOURS)
    WorkerStatsReport.objects.filter(received__lt=cutoff).delete()
    if row.pk % 100 == 0:
        # Now and then (the count is not free): a worker's oldest rows past its share.
        keep = settings.CLEARML_WORKER_STATS_ROWS
        oldest = (
            WorkerStatsReport.objects.filter(worker=worker)
            .order_by("-timestamp")
            .values_list("timestamp", flat=True)[keep : keep + 1]
        )
        if oldest:
            WorkerStatsReport.objects.filter(worker=worker, timestamp__lte=oldest[0]).delete()


def _range(call) -> tuple[float, float, int]:
    try:
        start, end = float(call.require("from_date")), float(call.require("to_date"))
        interval = int(call.require("interval"))
    except (TypeError, ValueError) as error:
        raise bad_request("from_date, to_date and interval must be numbers", 12) from error
    if not (math.isfinite(start) and math.isfinite(end)) or start >= end:
        raise bad_request("from_date must be less than to_date", subcode=12)
    interval = max(interval, MIN_INTERVAL)
    if (end - start) / interval > MAX_BUCKETS:
        raise bad_request(f"at most {MAX_BUCKETS} intervals in one chart", subcode=12)
    return start, end, interval


def _buckets(start: float, end: float, interval: int) -> list[int]:
    """The starts (seconds) of the complete buckets between start and end."""
    first = int(start // interval) * interval
    return list(range(first, int(end) - interval + 1, interval))


def _reports(start: float, end: float, workers=None):
    rows = WorkerStatsReport.objects.filter(
        timestamp__gte=int(start * 1000), timestamp__lte=int(end * 1000)
    )
    if workers:
        rows = rows.filter(worker__in=workers)
    return rows.order_by("timestamp").values_list("worker", "timestamp", "task", "stats")


def _variants(value) -> list[tuple[str, float]]:
    if isinstance(value, list):
        return [(str(index), item) for index, item in enumerate(value)]
    return [("total", value)]


@endpoint("workers.get_stats", verb="worker.read")
def get_stats(call):
    start, end, interval = _range(call)
    items = [i for i in as_list(call.require("items")) if isinstance(i, dict)]
    wanted: dict[str, list[str]] = {}
    for item in items:
        aggregation = str(item.get("aggregation") or "")
        if aggregation not in AGGREGATIONS:
            raise bad_request(f"unknown aggregation {aggregation!r}: avg, min or max", 12)
        wanted.setdefault(str(item.get("key")), [])
        if aggregation not in wanted[str(item.get("key"))]:
            wanted[str(item.get("key"))].append(aggregation)
    split = call.flag("split_by_variant")
    buckets = _buckets(start, end, interval)
    index = {bucket: position for position, bucket in enumerate(buckets)}
    # worker -> metric -> variant -> bucket -> values
    values = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    workers = [str(w) for w in as_list(call.get("worker_ids"))]
    for worker, timestamp, _, stats in _reports(start, end, workers):
        bucket = int(timestamp / 1000 // interval) * interval
        if bucket not in index:
            continue
        for metric in wanted:
            if metric in stats:
                for variant, value in _variants(stats[metric]):
                    values[worker][metric][variant if split else ""][bucket].append(value)
    answer = []
    for worker, metrics in values.items():
        rows = []
        for metric in (m for m in wanted if m in metrics):
            for variant, by_bucket in metrics[metric].items():
                rows.append(
                    {
                        "metric": metric,
                        "variant": variant or None,
                        "dates": [b * 1000 for b in buckets],
                        "stats": [
                            {
                                "aggregation": aggregation,
                                "values": [
                                    AGGREGATIONS[aggregation](by_bucket[b]) if by_bucket[b] else 0.0
                                    for b in buckets
                                ],
                            }
                            for aggregation in wanted[metric]
                        ],
                    }
                )
        answer.append({"worker": worker, "metrics": rows})
    return {"workers": answer}


@endpoint("workers.get_activity_report", verb="worker.read")
def get_activity_report(call):
    """How many workers reported in each bucket, and how many of them ran a task."""
    start, end, interval = _range(call)
    buckets = _buckets(start, end, interval)
    total, active = defaultdict(set), defaultdict(set)
    for worker, timestamp, task, _ in _reports(start, end):
        bucket = int(timestamp / 1000 // interval) * interval
        total[bucket].add(worker)
        if task:
            active[bucket].add(worker)
    dates = [b * 1000 for b in buckets]
    return {
        "total": {"dates": dates, "counts": [len(total[b]) for b in buckets]},
        "active": {"dates": dates, "counts": [len(active[b]) for b in buckets]},
    }


@endpoint("workers.get_metric_keys", verb="worker.read")
def get_metric_keys(call):
    rows = WorkerStatsReport.objects.all()
    workers = [str(w) for w in as_list(call.get("worker_ids"))]
    if workers:
        rows = rows.filter(worker__in=workers)
    keys: set[str] = set()
    for stats in rows.values_list("stats", flat=True)[:MAX_BUCKETS]:
        keys.update(stats)
    if not keys:
        # clearml-server's 400 "worker stats not found" (subcode 1005).
        raise ApiError(400, f"No statistic metrics found for the workers {workers}", 1005)
    categories = defaultdict(list)
    for key in sorted(keys):
        categories[key.partition("_")[0]].append(key)
    return {
        "categories": [{"name": name, "metric_keys": keys} for name, keys in categories.items()]
    }
