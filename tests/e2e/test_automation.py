"""Schedules and triggers end to end: a real server, broker, server workers (whose sweeps
fire them) and step workers; set up through the SDK's TaskScheduler and TriggerScheduler
as a user's script would.

Every wait is bounded; a wait for ticks to pass while no server worker runs is a wait for
the clock, which is the fault under test.
"""

import json
import re
import sys
import time
from datetime import datetime

import pytest

from tests.support import REPO, run_script, start_cluster, start_process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]

EXAMPLE = REPO / "examples" / "pipeline_from_tasks"
SCRIPTS = REPO / "tests" / "e2e" / "scripts"
GRACE = 1.5  # SCHEDULE_MISFIRE_GRACE_SECONDS of this module's cluster
TERMINAL = {"completed", "failed", "stopped"}


@pytest.fixture(scope="module")
def auto(tmp_path_factory):
    """A cluster whose schedules call a tick missed 1.5 s after it passed."""
    running = start_cluster(
        tmp_path_factory.mktemp("automation"), SCHEDULE_MISFIRE_GRACE_SECONDS=str(GRACE)
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeded(auto):
    """The seed's base tasks, a worker on `default`, and one run of the seed's controller
    script: the run whose definition schedules and triggers of "pipeline demo" start."""
    env = auto.server.sdk_env(MPLBACKEND="Agg")
    for script in ("step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py"):
        result = run_script(EXAMPLE / script, env, timeout=120)
        assert result.returncode == 0, result.stderr
    auto.queues.add("default")
    auto.start_worker("default", MPLBACKEND="Agg")
    result = run_script(EXAMPLE / "pipeline_from_tasks.py", env, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    return env, _latest_run(auto, "pipeline demo")


@pytest.fixture(scope="module")
def quick_base(auto):
    """A step that exits at once; its clones wait on a queue nobody consumes, so schedules
    of it count firings without running anything."""
    result = run_script(SCRIPTS / "fault_step.py", auto.server.sdk_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.split("TASK_ID ")[1].split()[0]


def _latest_run(cluster, name: str) -> dict:
    runs = cluster.get("pipelines/", page_size=1000)["results"]
    run = max((r for r in runs if r["name"] == name), key=lambda r: r["created"])
    return cluster.get(f"pipelines/{run['id']}/")


def _sdk(cluster, cls: str, method: str, **kwargs) -> None:
    spec = json.dumps({"class": cls, "method": method, "kwargs": kwargs})
    result = run_script(SCRIPTS / "automation_setup.py", cluster.server.sdk_env(), args=[spec])
    assert result.returncode == 0, result.stderr
    assert "run on the server" in result.stdout


def _one(cluster, kind: str, name: str) -> dict:
    rows = cluster.get(f"{kind}/", name=name)["results"]
    assert len(rows) == 1, rows
    return rows[0]


def _firings(cluster, kind: str, row_id: str) -> list[dict]:
    rows = cluster.get(f"{kind}/{row_id}/firings/", page_size=1000)["results"]
    return sorted(rows, key=lambda f: f.get("tick") or f["created"])


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _clones_of(cluster, base_id: str) -> list[dict]:
    return cluster.get("tasks/", parent=base_id, page_size=1000)["results"]


def _server_worker(cluster, name: str):
    process = start_process(
        name,
        [sys.executable, "-m", "pipelines.launcher.cli", "serverworker"],
        cluster.server.env,
        cluster.data_dir / "logs" / f"{name}.log",
    )
    cluster.processes.append(process)
    process.wait_for_log("sweeping every", timeout=60)
    return process


def _grid(firings: list[dict], seconds: float) -> list[int]:
    """The ticks of `firings` as multiples of the interval after the first one."""
    first = _when(firings[0]["tick"])
    return [round((_when(f["tick"]) - first).total_seconds() / seconds) for f in firings]


# ---------------------------------------------------------------- the seed on a schedule


def test_a_schedule_every_two_seconds_runs_the_seed_pipeline_and_skips_ticks_while_it_runs(
    auto, seeded
):
    _, defining = seeded
    _sdk(
        auto,
        "TaskScheduler",
        "add_pipeline",
        pipeline_project="examples",
        pipeline_name="pipeline demo",
        name="seed every 2 s",
        interval_seconds=2,
        single_instance=True,  # ClearML's name for overlap "skip"
    )
    schedule = _one(auto, "schedules", "seed every 2 s")
    assert schedule["overlap"] == "skip" and len(schedule["upcoming"]) == 5

    def two_runs_ended():
        launched = [f for f in _firings(auto, "schedules", schedule["id"]) if f["run"]]
        runs = [auto.get(f"pipelines/{f['run']}/") for f in launched[:2]]
        return runs if len(runs) == 2 and all(r["status"] in TERMINAL for r in runs) else None

    first, second = wait_until(two_runs_ended, timeout=300, interval=0.5)
    auto.post(f"schedules/{schedule['id']}/pause/")
    # A run a tick started just before the pause ends before the next tests.
    wait_until(
        lambda: all(
            auto.get(f"pipelines/{f['run']}/")["status"] in TERMINAL
            for f in _firings(auto, "schedules", schedule["id"])
            if f["run"]
        ),
        timeout=300,
        interval=0.5,
    )
    assert first["status"] == second["status"] == "completed"
    # Never two at once: the second started after the first ended ...
    assert _when(second["created"]) >= _when(first["completed"])
    # ... because the ticks in between were skipped, each saying why.
    firings = _firings(auto, "schedules", schedule["id"])
    first_tick = next(f["tick"] for f in firings if f["run"] == first["id"])
    second_tick = next(f["tick"] for f in firings if f["run"] == second["id"])
    between = [f for f in firings if first_tick < f["tick"] < second_tick]
    assert between and all(f["state"] == "skipped" for f in between)
    assert all("still running (overlap: skip)" in f["reason"] for f in between)
    # Each run is the seed's definition, started anew: its steps from the script's run.
    for run in (first, second):
        assert run["steps"] == defining["steps"]
        controller = auto.task(run["controller"])
        assert controller["parent"] == defining["controller"]
        assert controller["runtime"]["started_by"]["schedule"] == schedule["id"]
        assert {n["status"] for n in run["nodes"]} == {"completed"}


# ---------------------------------------------------------------- a server worker killed


@pytest.mark.parametrize("missed", ["run_all", "run_once", "skip"])
def test_a_server_worker_killed_across_ticks_neither_misses_nor_doubles(auto, quick_base, missed):
    idle = auto.queue("idle")
    name = f"every 2 s {missed}"
    _sdk(
        auto,
        "TaskScheduler",
        "add_task",
        schedule_task_id=quick_base,
        queue=idle,
        name=name,
        interval_seconds=2,
        missed=missed,
    )
    schedule = _one(auto, "schedules", name)
    wait_until(lambda: _firings(auto, "schedules", schedule["id"]), timeout=30)
    worker = next(p for p in auto.processes if p.name == "server-worker")
    auto.processes.remove(worker)
    worker.kill()
    killed = time.time()
    # Three ticks pass, and the last of them is past the grace, while nothing sweeps.
    wait_until(lambda: time.time() > killed + 3 * 2 + GRACE + 0.5, timeout=30, interval=0.2)
    restarted = time.time()
    _server_worker(auto, "server-worker")
    wait_until(
        lambda: any(
            _when(f["tick"]).timestamp() > restarted
            for f in _firings(auto, "schedules", schedule["id"])
        ),
        timeout=30,
        interval=0.2,
    )
    auto.post(f"schedules/{schedule['id']}/pause/")
    firings = _firings(auto, "schedules", schedule["id"])
    launched = [f for f in firings if f["state"] == "launched"]
    # Never doubled: one clone per launched firing, one firing per tick.
    assert len(_clones_of(auto, quick_base)) == len(launched) + _launched_before(
        auto, quick_base, schedule
    )
    assert len({f["tick"] for f in firings}) == len(firings)
    grid = _grid(launched, 2)
    outage = [f for f in firings if killed + 0.5 < _when(f["tick"]).timestamp() < restarted - GRACE]
    if missed == "run_all":
        # Every tick ran, the missed ones late: the launched ticks are the whole grid.
        assert grid == list(range(grid[-1] + 1)), grid
        assert any(f["reason"] == "missed, run late" for f in launched)
    elif missed == "run_once":
        # One run stood for all the missed ticks: a gap in the grid, and one firing saying so.
        assert any(b - a > 1 for a, b in zip(grid, grid[1:], strict=False)), grid
        # (A sweep slowed past the grace by a busy machine may coalesce one more tick later.)
        once = [f for f in launched if _count(r"run once for this tick and (\d+) missed", f) >= 2]
        assert len(once) == 1, firings
        assert not [f for f in outage if f["state"] == "launched"]
    else:
        skipped = [f for f in firings if _count(r"(\d+) tick\(s\) from .* passed while no", f) >= 3]
        assert len(skipped) == 1 and skipped[0]["state"] == "skipped", firings
        assert not [f for f in outage if f["state"] == "launched"], firings
        assert launched[-1]["tick"] > skipped[0]["tick"]


def _count(pattern: str, firing: dict) -> int:
    """The number a firing's reason gives (how many ticks it stands for), 0 if none."""
    match = re.search(pattern, firing["reason"])
    return int(match.group(1)) if match else 0


def _launched_before(cluster, base_id: str, schedule: dict) -> int:
    """Clones of the base that other schedules of this module started."""
    others = [
        s
        for s in cluster.get("schedules/", page_size=1000)["results"]
        if s["base_task"] == base_id and s["id"] != schedule["id"]
    ]
    return sum(
        1
        for s in others
        for f in _firings(cluster, "schedules", s["id"])
        if f["state"] == "launched"
    )


# ---------------------------------------------------------------- two server workers


def test_two_server_workers_fire_each_tick_once(auto, quick_base):
    second = _server_worker(auto, "server-worker-2")
    assert second.process.poll() is None
    idle = auto.queue("idle")
    _sdk(
        auto,
        "TaskScheduler",
        "add_task",
        schedule_task_id=quick_base,
        queue=idle,
        name="every second, two workers",
        interval_seconds=1,
        missed="run_all",
    )
    schedule = _one(auto, "schedules", "every second, two workers")
    wait_until(
        lambda: len(_firings(auto, "schedules", schedule["id"])) >= 8, timeout=60, interval=0.2
    )
    auto.post(f"schedules/{schedule['id']}/pause/")
    firings = _firings(auto, "schedules", schedule["id"])
    assert {f["state"] for f in firings} == {"launched"}
    # One firing per tick, none missed, and one clone per firing.
    assert _grid(firings, 1) == list(range(len(firings)))
    started = [t for t in _clones_of(auto, quick_base) if t["id"] in {f["task"] for f in firings}]
    assert len(started) == len(firings) == len({f["task"] for f in firings})


# ------------------------------------------------------- an event while no server worker runs


def test_an_event_while_no_server_worker_runs_fires_its_trigger_once_after_the_restart(
    auto, quick_base
):
    idle = auto.queue("idle")
    subject = auto.post("tasks/", {"project_name": "e2e-faults", "name": "to be tagged"})
    _sdk(
        auto,
        "TriggerScheduler",
        "add_task_trigger",
        schedule_task_id=quick_base,
        schedule_queue=idle,
        name="on deploy tag",
        trigger_project="e2e-faults",
        trigger_on_tags=["deploy"],
        task_parameters={"General/go_file": "${trigger.id}"},
    )
    trigger = _one(auto, "triggers", "on deploy tag")
    for worker in [p for p in auto.processes if p.name.startswith("server-worker")]:
        auto.processes.remove(worker)
        worker.kill()
    auto.patch(f"tasks/{subject['id']}/", {"tags": ["deploy"]})
    # Recorded with the event, waiting for a server worker to start it.
    (firing,) = _firings(auto, "triggers", trigger["id"])
    assert firing["state"] == "pending" and firing["source_task"] == subject["id"]
    _server_worker(auto, "server-worker")
    wait_until(
        lambda: _firings(auto, "triggers", trigger["id"])[0]["state"] == "launched",
        timeout=30,
        interval=0.2,
    )
    # The message sent at the event and the sweeps both came to it: it started once. (A
    # 1 s schedule is the clock: each of its firings is a sweep.)
    launched_at = time.time()
    _sdk(
        auto,
        "TaskScheduler",
        "add_task",
        schedule_task_id=quick_base,
        queue=idle,
        name="sweep clock",
        interval_seconds=1,
    )
    clock = _one(auto, "schedules", "sweep clock")
    wait_until(
        lambda: len(
            [
                f
                for f in _firings(auto, "schedules", clock["id"])
                if _when(f["tick"]).timestamp() > launched_at + 2
            ]
        )
        >= 2,
        timeout=30,
        interval=0.2,
    )
    auto.post(f"schedules/{clock['id']}/pause/")
    (firing,) = _firings(auto, "triggers", trigger["id"])
    started = auto.task(firing["task"])
    assert started["parent"] == quick_base and started["status"] == "queued"
    assert started["hyperparameters"]["General"]["go_file"]["value"] == subject["id"]
    assert "on deploy tag" in started["tags"]
    clones = [t for t in _clones_of(auto, quick_base) if "on deploy tag" in t["tags"]]
    assert len(clones) == 1


# ---------------------------------------------------------------- a completion trigger


def test_a_completion_trigger_starts_a_second_pipeline_reading_the_first_ones_artifact(
    auto, seeded
):
    env, defining = seeded
    first_dataset = _dataset_url(auto, defining)
    result = run_script(SCRIPTS / "consumer_pipeline.py", env, timeout=300, args=[first_dataset])
    assert result.returncode == 0, result.stderr + result.stdout
    _sdk(
        auto,
        "TriggerScheduler",
        "add_pipeline_trigger",
        name="process each new dataset",
        trigger_project="examples",
        trigger_name="^pipeline demo$",
        trigger_on_status=["completed"],
        schedule_pipeline_project="examples",
        schedule_pipeline_name="dataset consumer",
        schedule_pipeline_version="1.0",
        pipeline_parameters={"dataset_url": "${trigger.artifacts.dataset.url}"},
    )
    trigger = _one(auto, "triggers", "process each new dataset")
    result = run_script(EXAMPLE / "pipeline_from_tasks.py", env, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    seed_run = _latest_run(auto, "pipeline demo")
    assert seed_run["status"] == "completed"

    def consumer_ended():
        firings = _firings(auto, "triggers", trigger["id"])
        if not firings or not firings[0]["run"]:
            assert not firings or firings[0]["state"] in ("pending", "launched"), firings
            return None
        run = auto.get(f"pipelines/{firings[0]['run']}/")
        return (firings, run) if run["status"] in TERMINAL else None

    firings, consumer = wait_until(consumer_ended, timeout=240, interval=0.5)
    assert len(firings) == 1 and firings[0]["source_task"] == seed_run["controller"]
    assert consumer["status"] == "completed" and consumer["name"] == "dataset consumer"
    new_dataset = _dataset_url(auto, seed_run)
    assert new_dataset != first_dataset
    assert consumer["parameters"] == {"dataset_url": new_dataset}
    step = auto.task(consumer["nodes"][0]["task"])
    assert step["hyperparameters"]["General"]["dataset_url"]["value"] == new_dataset
    assert "X_train" in {a["name"] for a in auto.get(f"tasks/{step['id']}/artifacts/")}
    controller = auto.task(consumer["controller"])
    assert "process each new dataset" in controller["tags"]  # ClearML's add_tag
    # Sweeps since then started nothing more for that one event.
    assert len(_firings(auto, "triggers", trigger["id"])) == 1


def _dataset_url(cluster, run: dict) -> str:
    node = next(n for n in run["nodes"] if n["name"] == "stage_data")
    artifacts = cluster.get(f"tasks/{node['task']}/artifacts/")
    return next(a["url"] for a in artifacts if a["name"] == "dataset")
