"""What a step used, measured by its real worker and stored on its task."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def burner(cluster) -> str:
    return cluster.register(SCRIPTS / "burn_cpu.py")


@pytest.fixture(scope="module")
def resource_queue(cluster) -> str:
    queue = cluster.queue("resources")
    # No nvidia-smi on this worker's PATH: GPU time is unknown, never a made-up 0.
    cluster.start_worker(queue, PATH="/usr/bin:/bin")
    return queue


def test_a_step_that_burns_a_cpu_second_reports_plausible_resources(
    cluster, burner, resource_queue
):
    task_id = cluster.launch(burner, resource_queue, {"seconds": 0.5})
    task = cluster.wait_for_status(task_id, "completed", timeout=90)
    # Half the burn is in a child process: the group's children are counted too.
    assert 0.5 <= task["resource_cpu_seconds"] <= 5, task
    assert task["resource_peak_rss_bytes"] > 10 * 1024 * 1024, task
    assert task["resource_wall_seconds"] >= task["resource_cpu_seconds"] * 0.5, task
    assert task["resource_gpu_seconds"] is None, task


def test_a_failed_step_reports_its_resources_too(cluster, burner, resource_queue):
    task_id = cluster.launch(burner, resource_queue, {"seconds": 0.1, "exit_code": 3})
    task = cluster.wait_for_status(task_id, "failed", timeout=90)
    assert task["resource_cpu_seconds"] > 0, task
    assert task["resource_wall_seconds"] > 0, task


@pytest.mark.parametrize(
    "resources",
    [
        {"cpu_seconds": -1},
        {"cpu_seconds": "nan"},
        {"wall_seconds": "inf"},
        {"peak_rss_bytes": 2**62},
        {"gpu_seconds": 1e30},
        {"wall_seconds": "fast"},
    ],
)
def test_a_worker_reporting_impossible_resources_is_refused(cluster, burner, resources):
    response = cluster.server.api(cluster.server.worker_key).post(
        f"{cluster.server.url}/api/v1/tasks/{burner}/finish/",
        json={"attempt": 1, "status": "completed", "resources": resources},
    )
    assert response.status_code == 400, response.text
    assert "resources" in response.text


def test_a_raw_nan_in_the_body_is_refused(cluster, burner):
    body = '{"attempt": 1, "status": "completed", "resources": {"cpu_seconds": NaN}}'
    response = cluster.server.api(cluster.server.worker_key).post(
        f"{cluster.server.url}/api/v1/tasks/{burner}/finish/",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text


def test_gpu_time_is_counted_from_nvidia_smi_where_present(tmp_path):
    """A fake nvidia-smi that lists this process: the sampler counts the time it ran."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!{sys.executable}\nimport os\nprint(os.getppid())\n")
    fake.chmod(0o755)
    script = (
        "import os, time\n"
        "from pipelines.worker.step_resources import GpuSampler\n"
        f"s = GpuSampler(os.getpgid(0), interval=0.05, nvidia_smi={str(fake)!r}).start()\n"
        "time.sleep(0.5)\n"
        "print(s.stop())\n"
        "print(GpuSampler(os.getpgid(0), nvidia_smi='/nonexistent/nvidia-smi').start().stop())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    counted, absent = result.stdout.split()
    assert float(counted) > 0
    assert absent == "None"
