"""Scalar charts from min/max buckets, and the feeds a page follows a running task with.

Through Django's test client and the real database; the browser tests drive the same
endpoints from the page against a server process.
"""

import math
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.core import events, scalar_rollup, services
from webapp.core.models import ScalarBucket, ScalarSeries
from webapp.core.scalar_rollup import MAX_BUCKETS


def _report(task, points, title="loss", series="train"):
    events.ingest_events(
        task,
        [
            {"type": "scalar", "title": title, "series": series, "iteration": i, "value": v}
            for i, v in points
        ],
    )


def _charts(client, task, **params):
    response = client.get(f"/api/v1/tasks/{task.id}/scalars/charts/", params)
    assert response.status_code == 200, response.content
    return response.json()


def _drawn(payload, title="loss", series="train"):
    return next(s for s in payload["series"] if (s["title"], s["series"]) == (title, series))


@pytest.fixture
def running(db, admin_user):
    return services.create_task(
        user=admin_user, project_name="feeds", name="running", start_running=True
    )


def test_a_long_series_is_drawn_from_at_most_four_points_per_bucket_with_every_spike(
    admin_client, running
):
    n = 50_000
    values = [math.sin(i / 500) for i in range(n)]
    spikes = {7_777: 50.0, 31_001: -40.0}
    for i, v in spikes.items():
        values[i] = v
    for start in range(0, n, 5_000):  # batches, as the SDK sends them
        _report(running, [(i, values[i]) for i in range(start, start + 5_000)])
    drawn = _drawn(_charts(admin_client, running))
    assert drawn["points"] == n
    assert len(drawn["x"]) <= 4 * MAX_BUCKETS
    assert drawn["x"] == sorted(drawn["x"])
    assert max(drawn["y"]) == 50.0 and drawn["x"][drawn["y"].index(50.0)] == 7_777
    assert min(drawn["y"]) == -40.0 and drawn["x"][drawn["y"].index(-40.0)] == 31_001
    assert (drawn["x"][0], drawn["x"][-1], drawn["y"][-1]) == (0, n - 1, values[-1])
    row = ScalarSeries.objects.get(task=running)
    assert ScalarBucket.objects.filter(series=row).count() <= MAX_BUCKETS


def test_buckets_equal_those_built_from_all_points_whatever_the_order_of_the_reports(
    admin_client, running
):
    rng = random.Random(7)
    points = {i: rng.uniform(-1, 1) for i in range(6_000)}
    order = list(points)
    rng.shuffle(order)
    # out of order, then some points reported again with new values
    for start in range(0, len(order), 700):
        _report(running, [(i, points[i]) for i in order[start : start + 700]])
    for i in rng.sample(order, 300):
        points[i] = rng.uniform(-5, 5)
        _report(running, [(i, points[i])])
    row = ScalarSeries.objects.get(task=running)
    width, expected = scalar_rollup.bucket_all([(i, points[i], 0.0) for i in sorted(points)])
    assert row.bucket_width == width and row.points == len(points)
    stored = {
        b.index: (b.count, b.min_iteration, b.min_value, b.max_iteration, b.max_value)
        for b in row.buckets.all()
    }
    assert stored == {
        index: (b["count"], b["min_iteration"], b["min_value"], b["max_iteration"], b["max_value"])
        for index, b in expected.items()
    }


def test_a_batch_of_many_series_keeps_each_series_buckets_as_if_reported_alone(running):
    # More series in one batch than one bucket read holds: each series' buckets must be
    # what its own points give, however the batch's reads and writes are grouped.
    rng = random.Random(11)
    series_count = scalar_rollup.RANGES_PER_READ * 2 + 17
    points = {(s, i): rng.uniform(-1, 1) for s in range(series_count) for i in range(40)}
    order = list(points)
    rng.shuffle(order)
    for start in range(0, len(order), 5_000):
        batch = order[start : start + 5_000]
        events.ingest_events(
            running,
            [
                {"type": "scalar", "title": "t", "series": f"s{s}", "iteration": i, "value": v}
                for (s, i), v in ((key, points[key]) for key in batch)
            ],
        )
    rows = {row.series: row for row in ScalarSeries.objects.filter(task=running)}
    assert len(rows) == series_count
    for s in rng.sample(range(series_count), 25):
        mine = sorted((i, v, 0.0) for (t, i), v in points.items() if t == s)
        width, expected = scalar_rollup.bucket_all(mine)
        row = rows[f"s{s}"]
        assert (row.bucket_width, row.points) == (width, 40)
        stored = {b.index: (b.count, b.min_value, b.max_value) for b in row.buckets.all()}
        assert stored == {
            index: (b["count"], b["min_value"], b["max_value"]) for index, b in expected.items()
        }


def test_a_short_series_is_drawn_point_for_point_and_gaps_stay_gaps(admin_client, running):
    _report(running, [(0, 1.0), (1, math.nan), (2, 3.0)])
    drawn = _drawn(_charts(admin_client, running))
    assert (drawn["x"], drawn["y"]) == ([0, 1, 2], [1.0, None, 3.0])
    assert len(drawn["t"]) == 3


def test_single_values_come_as_a_table_not_as_a_chart(admin_client, running):
    _report(running, [(-(2**31), 0.97)], title="Summary", series="accuracy")
    _report(running, [(0, 1.0)])
    payload = _charts(admin_client, running)
    assert payload["single_values"] == [{"title": "Summary", "name": "accuracy", "value": 0.97}]
    assert [(s["title"], s["series"]) for s in payload["series"]] == [("loss", "train")]


def test_the_scalar_feed_sends_only_the_points_stored_after_the_seq_it_is_given(
    admin_client, running
):
    _report(running, [(i, float(i)) for i in range(100)])
    seq = _charts(admin_client, running)["seq"]
    url = f"/api/v1/tasks/{running.id}/scalars/since/"
    assert admin_client.get(url, {"seq": seq}).json() == {"seq": seq, "points": [], "reset": False}
    _report(running, [(100, 100.0), (101, 101.0)])
    _report(running, [(5, -1.0)], series="validation")
    new = admin_client.get(url, {"seq": seq}).json()
    assert new["seq"] == seq + 2 and new["reset"] is False
    assert [(p["series"], p["x"], p["y"]) for p in new["points"]] == [
        ("train", [100, 101], [100.0, 101.0]),
        ("validation", [5], [-1.0]),
    ]
    # more new points than the page asked for: it redraws instead
    assert admin_client.get(url, {"seq": 0, "limit": 10}).json()["reset"] is True


def test_a_refresh_reads_the_same_rows_at_ten_times_the_points(admin_client, running, admin_user):
    """The feed's statements and the rows the database visits for them do not grow with
    the task: each is one range of the (task, seq) index."""

    def refresh_cost(task, existing: int) -> tuple[int, list]:
        for start in range(0, existing, 10_000):
            _report(task, [(i, float(i)) for i in range(start, min(existing, start + 10_000))])
        seq = _charts(admin_client, task)["seq"]
        _report(task, [(existing + i, 1.0) for i in range(50)])
        with CaptureQueriesContext(connection) as queries:
            payload = admin_client.get(
                f"/api/v1/tasks/{task.id}/scalars/since/", {"seq": seq}
            ).json()
        assert len(payload["points"][0]["x"]) == 50
        feed = [q["sql"] for q in queries if "core_scalar" in q["sql"]]
        return len(queries), feed

    small = refresh_cost(running, 2_000)
    big_task = services.create_task(
        user=admin_user, project_name="feeds", name="big", start_running=True
    )
    big = refresh_cost(big_task, 20_000)
    assert small[0] == big[0]
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    assert big[1]
    for sql in big[1]:
        with connection.cursor() as cursor:
            cursor.execute(explain + sql)
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert "scalar_task_seq" in plan, plan


def test_feeds_check_their_query_and_hide_other_teams_tasks(admin_client, stranger_client, running):
    base = f"/api/v1/tasks/{running.id}"
    for path, query in (
        ("/scalars/since/", {"seq": "-1"}),
        ("/scalars/since/", {"seq": "x"}),
        ("/scalars/since/", {"limit": "0"}),
        ("/plots/since/", {"limit": "1000000"}),
        ("/scalars/charts/", {"title": "x" * 300}),
    ):
        response = admin_client.get(base + path, query)
        assert response.status_code == 400, (path, query, response.content)
        assert response.json()["error"] == "invalid"
    for path in ("/scalars/charts/", "/scalars/since/", "/plots/since/", "/samples/since/"):
        assert stranger_client.get(base + path).status_code == 404, path


def test_plots_and_samples_feeds_send_what_changed_after_a_seq(admin_client, running):
    def plot(title, value):
        events.ingest_events(
            running,
            [
                {
                    "type": "plot",
                    "title": title,
                    "series": "s",
                    "iteration": 0,
                    "figure": {"data": [{"type": "bar", "y": [value]}]},
                }
            ],
        )

    url = f"/api/v1/tasks/{running.id}/plots/since/"
    plot("a", 1)
    plot("b", 2)
    first = admin_client.get(url).json()
    assert [p["title"] for p in first["plots"]] == ["a", "b"]
    assert admin_client.get(url, {"seq": first["seq"]}).json()["plots"] == []
    plot("a", 3)  # the same plot reported again comes again
    again = admin_client.get(url, {"seq": first["seq"]}).json()
    assert [(p["title"], p["figure"]["data"][0]["y"]) for p in again["plots"]] == [("a", [3])]

    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/api/v1/tasks/{running.id}/samples/since/"
    events.store_debug_sample(
        running, title="img", series="s", iteration=1,
        uploaded=SimpleUploadedFile("a.png", b"\x89PNG", content_type="image/png"),
    )  # fmt: skip
    samples = admin_client.get(url).json()
    assert [(s["title"], s["iteration"]) for s in samples["samples"]] == [("img", 1)]
    assert admin_client.get(url, {"seq": samples["seq"]}).json()["samples"] == []


def test_downsample_keeps_the_extremes_and_the_last_point():
    xs = list(range(10_000))
    ys = [0.0] * 10_000
    ys[1234], ys[8765] = 9.0, -9.0
    kept_x, kept_y = events.downsample(xs, ys, 200)
    assert len(kept_x) <= 200
    assert 9.0 in kept_y and -9.0 in kept_y
    assert kept_x[-1] == 9_999 and kept_x == sorted(kept_x)


def test_a_reset_task_has_no_charts_left(admin_client, running):
    _report(running, [(i, float(i)) for i in range(10)])
    services.reset_task(services.mark_completed(running))
    payload = _charts(admin_client, running)
    assert payload["series"] == [] and payload["seq"] == 0
    assert not ScalarBucket.objects.filter(series__task=running).exists()
