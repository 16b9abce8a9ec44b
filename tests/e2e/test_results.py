"""Results reported from a real SDK process reach the server completely, exactly once."""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, run_script, start_server, wait_until

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"


def test_scalars_plots_matplotlib_tables_and_images_are_stored_once_and_read_back(server):
    result = run_script(SCRIPTS / "report_results.py", server.sdk_env(MPLBACKEND="Agg"))
    assert result.returncode == 0, result.stderr
    task_id = re.search(r"TASK_ID ([0-9a-f]{32})", result.stderr).group(1)
    api = server.api()
    base = f"{server.url}/api/v1/tasks/{task_id}"

    scalars = api.get(f"{base}/scalars/").json()["train"]
    assert (
        len(scalars["loss"]["x"]) + len(scalars["accuracy"]["x"]) + len(scalars["odd"]["x"])
        == 10_000
    )
    assert scalars["loss"]["x"][:3] == [0, 3, 6] and scalars["loss"]["y"][1] == 1.5
    odd = dict(zip(scalars["odd"]["x"], scalars["odd"]["y"], strict=True))
    expected = {"NaN", "Infinity", "-Infinity", 1.5}
    assert {odd[i] for i in range(2, 14, 3)} == expected
    sampled = api.get(f"{base}/scalars/?max_points=100").json()["train"]["loss"]
    assert len(sampled["x"]) <= 101 and sampled["x"][-1] == scalars["loss"]["x"][-1]

    plots = {(p["title"], p["series"]): p["figure"] for p in api.get(f"{base}/plots/").json()}
    assert plots[("custom", "bars")]["data"][0]["y"] == [1, 2]
    curve = plots[("A curve", "plot")]["data"][0]
    assert curve["x"] == [0.0, 1.0, 2.0] and curve["y"] == [3.0, 1.0, 2.0]
    table = plots[("table", "frame")]["data"][0]
    assert table["header"]["values"] == ["x", "y"] and table["cells"]["values"] == [
        [1, 2],
        ["p", "q"],
    ]
    assert len(plots) == 3

    samples = api.get(f"{base}/samples/").json()
    assert [(s["title"], s["series"], s["iteration"]) for s in samples] == [
        ("samples", "gradient", 3)
    ]
    image = api.get(samples[0]["url"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"

    console = [line["text"] for line in api.get(f"{base}/console/").json()]
    assert "reported everything" in console

    task = api.get(f"{base}/").json()
    assert task["status"] == "completed"
    assert task["last_metrics"]["train/loss"]["iteration"] == 9999
    assert math.isclose(task["last_metrics"]["train/loss"]["value"], 9999 * 0.5)


def test_a_server_outage_while_reporting_loses_nothing(tmp_path):
    server = start_server(tmp_path / "server")
    try:
        progress = tmp_path / "progress"
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "report_through_outage.py"), str(progress)],
            env=server.sdk_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: progress.exists() and progress.read_text() not in ("", "0"), 30)
        server.stop()
        mark = progress.read_text()
        # the script keeps reporting into its buffer while the server is down
        wait_until(lambda: progress.read_text() != mark, 30, message="reporting during outage")
        server.start()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        task_id = re.search(r"TASK_ID ([0-9a-f]{32})", out).group(1)
        points = server.api().get(f"{server.url}/api/v1/tasks/{task_id}/scalars/").json()
        values = points["metric"]["value"]
        assert values["x"] == list(range(3000))
        assert values["y"] == [float(i) for i in range(3000)]
    finally:
        server.stop()
        server.drop_database()


@pytest.mark.execution
def test_the_same_reports_from_a_step_on_a_real_worker_arrive_exactly_once(cluster):
    script = (SCRIPTS / "report_results.py").read_text()
    queue = cluster.queue("results")
    cluster.start_worker(queue, MPLBACKEND="Agg")
    task = cluster.post(
        "tasks/",
        {
            "project_name": "e2e",
            "name": "reporter on a worker",
            "script": {"entry_point": "report_results.py", "code": script},
        },
    )
    cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
    done = cluster.wait_for_status(task["id"], "completed", "failed", timeout=120)
    assert done["status"] == "completed", cluster.console_text(task["id"])[-2000:]

    scalars = cluster.get(f"tasks/{task['id']}/scalars/")["train"]
    assert sum(len(series["x"]) for series in scalars.values()) == 10_000
    odd = dict(zip(scalars["odd"]["x"], scalars["odd"]["y"], strict=True))
    assert {odd[i] for i in range(2, 14, 3)} == {"NaN", "Infinity", "-Infinity", 1.5}
    plots = {(p["title"], p["series"]) for p in cluster.get(f"tasks/{task['id']}/plots/")}
    assert plots == {("custom", "bars"), ("A curve", "plot"), ("table", "frame")}
    samples = cluster.get(f"tasks/{task['id']}/samples/")
    assert [(s["title"], s["iteration"]) for s in samples] == [("samples", 3)]
    # the worker captured the step's console, once
    assert cluster.console_text(task["id"]).count("reported everything") == 1


@pytest.mark.execution
def test_every_logger_kind_and_a_joblib_model_from_a_step_on_a_real_worker_are_stored(cluster):
    queue = cluster.queue("every-kind")
    cluster.start_worker(queue, MPLBACKEND="Agg")
    task = cluster.post(
        "tasks/",
        {
            "project_name": "e2e",
            "name": "every kind on a worker",
            "script": {
                "entry_point": "report_every_kind.py",
                "code": (SCRIPTS / "report_every_kind.py").read_text(),
            },
        },
    )
    cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
    done = cluster.wait_for_status(task["id"], "completed", "failed", timeout=180)
    assert done["status"] == "completed", cluster.console_text(task["id"])[-3000:]
    base = f"tasks/{task['id']}"

    assert cluster.get(f"{base}/single-values/") == {"accuracy": 0.93, "f1": 0.88}
    # a single value is not a point of a series at some sentinel iteration
    assert cluster.get(f"{base}/scalars/") == {"loss": {"train": {"x": [1], "y": [0.5]}}}

    plots = {(p["title"], p["series"]): p["figure"] for p in cluster.get(f"{base}/plots/")}
    kinds = {key: [trace["type"] for trace in figure["data"]] for key, figure in plots.items()}
    assert kinds == {
        ("hist", "counts"): ["bar", "bar"],
        ("vector", "v"): ["bar"],
        ("scatter2d", "points"): ["scatter"],
        ("scatter3d", "points"): ["scatter3d"],
        ("confusion", "test"): ["heatmap"],
        ("matrix", "m"): ["heatmap"],
        ("surface", "s"): ["surface"],
        ("lines", "up"): ["scatter", "scatter"],
        ("table", "frame"): ["table"],
        ("table", "csv"): ["table"],
        ("table", "rows"): ["table"],
        ("plotly", "dict"): ["bar"],
        ("shown", "plot"): ["scatter"],
    }
    assert plots[("table", "csv")]["data"][0]["cells"]["values"] == [["alice", "bob"], [3, 4]]
    assert plots[("table", "frame")]["data"][0]["header"]["values"] == ["", "v"]
    assert plots[("confusion", "test")]["data"][0]["texttemplate"] == "%{z}"

    samples = {(s["title"], s["series"]): s for s in cluster.get(f"{base}/samples/")}
    assert {key: (s["kind"], s["stored"]) for key, s in samples.items()} == {
        ("image", "array"): ("image", True),
        ("image", "by url"): ("image", False),
        ("media", "audio"): ("audio", True),
        ("media", "html"): ("html", True),
        ("media", "video by url"): ("video", False),
    }
    assert samples[("media", "video by url")]["url"] == "http://127.0.0.1:9/clip.mp4"
    audio = cluster.server.api().get(samples[("media", "audio")]["url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"

    models = cluster.get(f"{base}/models/")
    output = {m["name"]: m for m in models["output"]}
    assert {name: (m["framework"], m["state"]) for name, m in output.items()} == {
        "model": ("ScikitLearn", "ready"),
        "explicit": ("PyTorch", "ready"),
    }
    assert output["explicit"]["tags"] == ["best"]
    assert [(i["name"], i["model"]["id"]) for i in models["input"]] == [
        ("warm start", output["explicit"]["id"])
    ]
    weights = cluster.server.api().get(output["model"]["url"])
    assert weights.status_code == 200 and len(weights.content) == output["model"]["size"]
    listed = cluster.get("models/", task=task["id"])["results"]
    assert {m["name"] for m in listed} == {"model", "explicit"}

    task = cluster.get(f"{base}/")
    assert task["tags"] == ["reported"] and task["comment"] == "every kind of result"
    console = cluster.console_text(task["id"])
    assert "reported every kind" in console and "a text line" in console


def test_oversized_media_and_a_model_the_server_refuses_never_stop_the_script(tmp_path):
    server = start_server(tmp_path / "server", MAX_MEDIA_BYTES="4000")
    try:
        result = run_script(SCRIPTS / "report_refused.py", server.sdk_env(MPLBACKEND="Agg"))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "still running" in result.stdout
        assert "media big/noise not stored: HTTP 413" in result.stderr
        assert "could not record the model saved to" in result.stderr
        task_id = re.search(r"TASK_ID ([0-9a-f]{32})", result.stderr).group(1)
        base = f"{server.url}/api/v1/tasks/{task_id}"
        samples = server.api().get(f"{base}/samples/").json()
        assert [(s["title"], s["series"]) for s in samples] == [("small", "dot")]
        assert server.api().get(f"{base}/models/").json()["output"] == []
    finally:
        server.stop()
        server.drop_database()
