"""Reading results back as clearml-server's event reads do (its API tests showed them
missing): raw scalar pages, averaged intervals, several tasks' charts, which metrics a
task reported, every summary of a series in last_metrics, plots and debug images paged
by iteration and sample by sample, and a batch of which nothing could be stored."""

import time

import pytest

from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


def _send(api, events: list) -> dict:
    response = api.raw("events.add_batch", events)
    payload = response.json()
    assert response.status_code == payload["meta"]["result_code"] == 200, payload["meta"]
    return payload["data"]


def _scalars(task: str, count: int, metric="loss", variant="train") -> list:
    return [
        {
            "type": "training_stats_scalar",
            "task": task,
            "iter": i,
            "metric": metric,
            "variant": variant,
            "value": float(i),
            "timestamp": int(time.time() * 1000),
        }
        for i in range(count)
    ]


def _plot(task: str, iteration: int, metric: str, variant: str, text: str) -> dict:
    stamp = 1_700_000_000_000 + iteration
    return {
        "type": "plot",
        "task": task,
        "iter": iteration,
        "metric": metric,
        "variant": variant,
        "plot_str": text,
        "timestamp": stamp,
    }


def test_raw_scalars_come_a_page_at_a_time_until_none_are_left(api):
    task = api.new_task()
    _send(api, _scalars(task, 40))
    metric = {"metric": "loss", "variants": ["train"]}
    page = api("events.scalar_metrics_iter_raw", task=task, metric=metric, batch_size=15)
    page_all = api(
        "events.scalar_metrics_iter_raw", task=task, metric=metric, batch_size=15, count_total=True
    )
    assert page_all["total"] == 40 and page_all["returned"] == 15
    iterations = []
    while page["returned"]:
        iterations += page["variants"]["train"]["iter"]
        page = api("events.scalar_metrics_iter_raw", task=task, scroll_id=page["scroll_id"])
    assert iterations == list(range(40))
    code, message = api.error("events.scalar_metrics_iter_raw", task=task, scroll_id="garbage")
    assert code == 400 and "scroll" in message.lower()


def test_samples_average_equal_intervals_and_tasks_compare_side_by_side(api):
    first, second = api.new_task(), api.new_task()
    _send(api, _scalars(first, 100) + _scalars(second, 100))
    whole = api("events.scalar_metrics_iter_histogram", task=first)["loss"]["train"]
    assert whole["x"] == list(range(100))
    averaged = api("events.scalar_metrics_iter_histogram", task=first, samples=10)["loss"]["train"]
    assert averaged["x"] == list(range(0, 100, 10))
    assert averaged["y"] == [i * 10 + 4.5 for i in range(10)]
    compared = api("events.multi_task_scalar_metrics_iter_histogram", tasks=[first, second])
    assert set(compared["metrics"]["loss"]["train"]) == {first, second}
    assert len(compared["metrics"]["loss"]["train"][second]["x"]) == 100


def test_last_metrics_keep_where_the_extremes_were_and_the_mean(api):
    task = api.new_task()
    values = [5.0, 1.0, 9.0, 3.0]
    events = _scalars(task, 4)
    for event, value in zip(events, values, strict=True):
        event["value"] = value
    _send(api, events[:2])
    _send(api, events[2:])
    document = api("tasks.get_by_id", task=task)["task"]
    (variants,) = document["last_metrics"].values()
    (point,) = variants.values()
    assert (point["value"], point["iter"]) == (3.0, 3)
    assert (point["min_value"], point["min_value_iteration"]) == (1.0, 1)
    assert (point["max_value"], point["max_value_iteration"]) == (9.0, 2)
    assert (point["first_value"], point["first_value_iteration"]) == (5.0, 0)
    assert (point["count"], point["mean_value"]) == (4, 4.5)
    assert api("events.get_task_latest_scalar_values", task=task)["last_iter"] == 3


def test_which_metrics_tasks_reported_and_a_projects_unique_pairs(api):
    project = api("projects.create", name="events/unique-pairs")["id"]
    one = api("tasks.create", name="one", project=project, type="training")["id"]
    two = api("tasks.create", name="two", project=project, type="training")["id"]
    _send(api, _scalars(one, 2, metric="m1") + _scalars(two, 2, metric="m2"))
    _send(api, [_plot(one, 0, "roc", "x", "{}")])
    pairs = api("projects.get_unique_metric_variants", project=project)["metrics"]
    assert {(p["metric"], p["variant"]) for p in pairs} == {("m1", "train"), ("m2", "train")}
    only = api("projects.get_unique_metric_variants", ids=[one])["metrics"]
    assert [p["metric"] for p in only] == ["m1"]
    by_task = api("events.get_task_metrics", tasks=[one, two], event_type="plot")["metrics"]
    assert {m["task"]: m["metrics"] for m in by_task} == {one: ["roc"], two: []}
    together = api("events.get_multi_task_metrics", tasks=[one, two])["metrics"]
    assert [m["metric"] for m in together] == ["m1", "m2", "roc"]


def test_a_batch_of_which_nothing_is_stored_is_refused_with_the_reasons(api):
    task = api.new_task()
    response = api.raw(
        "events.add_batch",
        [{"type": "unknown", "task": task}, {"type": "log", "msg": "no task"}],
    )
    meta = response.json()["meta"]
    assert (response.status_code, meta["result_subcode"]) == (400, 131)
    assert len(meta["error_data"]) == 2


def test_plot_text_that_is_no_figure_is_kept_word_for_word(compat_server, api):
    task = api.new_task()
    _send(api, [_plot(task, 1, "A", "AX", "not a figure")])
    (plot,) = api("events.get_task_plots", task=task)["plots"]
    assert plot["plot_str"] == "not a figure"
    # our own door shows it as an empty figure titled with the text
    ours = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task}/plots/").json()
    assert "not a figure" in str(ours)
    # text nested too deep to parse is text too
    _send(api, [_plot(task, 2, "A", "AX", "[" * 100_000)])
    texts = {p["iter"]: p["plot_str"] for p in api("events.get_task_plots", task=task)["plots"]}
    assert texts[2] == "[" * 100_000


def test_plots_page_by_iteration_and_refresh_starts_from_the_latest(api):
    task = api.new_task()
    _send(api, [_plot(task, i, "M", v, f"{v}@{i}") for i in range(10) for v in ("a", "b")])
    body = {"metrics": [{"task": task, "metric": "M"}], "iters": 4}
    first = api("events.plots", **body)
    assert [it["iter"] for it in first["metrics"][0]["iterations"]] == [9, 8, 7, 6]
    assert all(len(it["events"]) == 2 for it in first["metrics"][0]["iterations"])
    second = api("events.plots", **body, scroll_id=first["scroll_id"])
    assert [it["iter"] for it in second["metrics"][0]["iterations"]] == [5, 4, 3, 2]
    back = api("events.plots", **body, scroll_id=second["scroll_id"], navigate_earlier=False)
    assert [it["iter"] for it in back["metrics"][0]["iterations"]] == [9, 8, 7, 6]
    fresh = api("events.plots", **body, scroll_id=second["scroll_id"], refresh=True)
    assert fresh["metrics"][0]["iterations"][0]["iter"] == 9


def test_plot_samples_step_through_metrics_and_iterations(api):
    task = api.new_task()
    pairs = (("M1", "a"), ("M2", "b"))
    _send(api, [_plot(task, i, m, v, f"{m}{v}{i}") for i in range(2) for m, v in pairs])
    sample = api("events.get_plot_sample", task=task, metric="M1")
    assert [(e["iter"], e["plot_str"]) for e in sample["events"]] == [(1, "M1a1")]
    assert (sample["min_iteration"], sample["max_iteration"]) == (0, 1)
    assert sample["events"][0]["timestamp"] == 1_700_000_000_001
    earlier = api("events.next_plot_sample", task=task, scroll_id=sample["scroll_id"])
    assert [e["plot_str"] for e in earlier["events"]] == ["M1a0"]
    every = api("events.get_plot_sample", task=task, metric="M1", navigate_current_metric=False)
    later = api(
        "events.next_plot_sample", task=task, scroll_id=every["scroll_id"], navigate_earlier=False
    )
    assert [e["plot_str"] for e in later["events"]] == ["M2b1"]
    last = api(
        "events.next_plot_sample", task=task, scroll_id=later["scroll_id"], navigate_earlier=False
    )
    assert last["events"] == []


def test_several_tasks_plots_are_grouped_by_metric_variant_task_and_iteration(api):
    one, two = api.new_task(), api.new_task()
    _send(api, [_plot(one, 1, "A", "X", "one-1"), _plot(one, 2, "A", "X", "one-2")])
    _send(api, [_plot(two, 5, "A", "X", "two-5"), _plot(two, 5, "B", "Y", "two-b")])
    plots = api("events.get_multi_task_plots", tasks=[one, two])["plots"]
    assert set(plots["A"]["X"]) == {one, two}
    assert plots["A"]["X"][one]["2"]["plots"][0]["plot_str"] == "one-2"
    assert "1" not in plots["A"]["X"][one]
    only = api("events.get_multi_task_plots", tasks=[one, two], metrics=[{"metric": "B"}])
    assert list(only["plots"]) == ["B"]


def _image(task: str, iteration: int, variant: str, url: str) -> dict:
    return {
        "type": "training_debug_image",
        "task": task,
        "iter": iteration,
        "metric": "images",
        "variant": variant,
        "url": url,
    }


def test_an_image_reported_where_we_cannot_fetch_it_is_kept_as_its_location(compat_server, api):
    task = api.new_task()
    _send(api, [_image(task, 0, "a", "s3://bucket/a.png")])
    sample = api("events.get_debug_image_sample", task=task, metric="images", variant="a")
    assert sample["event"]["url"] == "s3://bucket/a.png"
    (ours,) = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task}/samples/").json()
    assert (ours["url"], ours["location"], ours["stored"]) == (None, "s3://bucket/a.png", False)
    bytes_url = f"{compat_server.url}/api/v1/samples/{ours['id']}/"
    assert compat_server.api().get(bytes_url, allow_redirects=False).status_code == 404


def test_a_reused_image_name_keeps_only_its_latest_iteration(api):
    # ClearML's SDK names image files by iteration modulo its history size: the file at a
    # name holds the last iteration written there.
    task = api.new_task()
    _send(api, [_image(task, n, "a", f"s3://bucket/a_{n % 3}.png") for n in range(7)])
    sample = api("events.get_debug_image_sample", task=task, metric="images", variant="a")
    assert (sample["min_iteration"], sample["max_iteration"]) == (4, 6)
    assert sample["event"]["url"] == "s3://bucket/a_0.png"
    pages = api("events.debug_images", metrics=[{"task": task, "metric": "images"}], iters=10)
    assert [it["iter"] for it in pages["metrics"][0]["iterations"]] == [6, 5, 4]


def test_image_samples_step_through_variants_and_iterations(api):
    task = api.new_task()
    _send(api, [_image(task, n, v, f"s3://b/{v}{n}") for n in range(2) for v in ("a", "b")])
    sample = api("events.get_debug_image_sample", task=task, metric="images", variant="a")
    assert sample["event"]["url"] == "s3://b/a1"
    later = api(
        "events.next_debug_image_sample",
        task=task,
        scroll_id=sample["scroll_id"],
        navigate_earlier=False,
    )
    assert later["event"]["url"] == "s3://b/b1"
    urls = []
    for _ in range(3):
        later = api("events.next_debug_image_sample", task=task, scroll_id=later["scroll_id"])
        urls.append(later["event"]["url"])
    assert urls == ["s3://b/a1", "s3://b/b0", "s3://b/a0"]
    last = api("events.next_debug_image_sample", task=task, scroll_id=later["scroll_id"])
    assert last["event"] is None


def test_console_lines_keep_their_time_iteration_and_metric_and_page_by_time(api):
    task = api.new_task()
    start = 1_700_000_000_000
    lines = [
        {"type": "log", "task": task, "iter": i, "timestamp": start + i * 1000, "msg": f"line {i}"}
        for i in range(10)
    ]
    _send(api, lines + [{**lines[0], "msg": "tagged", "metric": "m", "iter": 20}])
    newest = api("events.get_task_log", task=task, batch_size=4)
    assert newest["total"] == 11
    assert [e["iter"] for e in newest["events"]] == [9, 8, 7, 6]
    older = api(
        "events.get_task_log",
        task=task,
        batch_size=4,
        from_timestamp=newest["events"][-1]["timestamp"],
    )
    assert [e["iter"] for e in older["events"]] == [5, 4, 3, 2]
    later = api(
        "events.get_task_log",
        task=task,
        batch_size=2,
        from_timestamp=start + 5000,
        navigate_earlier=False,
    )
    assert [e["iter"] for e in later["events"]] == [6, 7]
    assert api("events.get_task_log", task=task, metrics=[{"metric": "m"}])["total"] == 1
    assert api("events.clear_task_log", task=task, exclude_metrics=["m"])["deleted"] == 10
    assert [e["msg"] for e in api("events.get_task_log", task=task)["events"]] == ["tagged"]


def test_every_event_of_a_task_pages_kind_by_kind(api):
    task = api.new_task()
    no_url = {k: v for k, v in _image(task, 1, "a", "").items() if k != "url"}
    logged = {"type": "log", "task": task, "iter": 1, "msg": "hello", "metric": "console"}
    _send(api, _scalars(task, 3) + [_plot(task, 0, "p", "x", "{}"), no_url, logged])
    page = api("events.get_task_events", task=task, batch_size=4)
    assert page["total"] == 6
    kinds = [event["type"] for event in page["events"]]
    page = api("events.get_task_events", task=task, scroll_id=page["scroll_id"])
    kinds += [event["type"] for event in page["events"]]
    assert kinds == ["training_stats_scalar"] * 3 + ["plot", "training_debug_image", "log"]
    assert api("events.get_task_events", task=task, scroll_id=page["scroll_id"])["events"] == []
    # the image without a URL is listed as a metric, and is no sample to show
    by_task = api("events.get_task_metrics", tasks=[task], event_type="training_debug_image")
    assert by_task["metrics"] == [{"task": task, "metrics": ["images"]}]
    logs = api("events.get_task_metrics", tasks=[task], event_type="log")["metrics"]
    assert logs == [{"task": task, "metrics": ["console"]}]
    shown = api("events.debug_images", metrics=[{"task": task}], iters=5)
    assert shown["metrics"][0]["iterations"] == []
