"""GPU time of a running step, sampled from `nvidia-smi` where the machine has it.

CPU seconds, peak memory and wall time come from the supervisor's reap of the step
(step_supervisor.step_usage). The kernel keeps no GPU time per process, so a sampler asks
`nvidia-smi` every few seconds which processes hold a GPU context and counts the time in
which any of them belongs to the step's process group. Without `nvidia-smi` (most
machines) it does nothing and the step's GPU time is reported as unknown (None), never as 0.
"""

import os
import shutil
import subprocess
import threading
import time

NVIDIA_SMI_QUERY = ("--query-compute-apps=pid", "--format=csv,noheader,nounits")
SAMPLE_SECONDS = float(os.environ.get("PIPELINES_GPU_SAMPLE_SECONDS", "2") or 2)
QUERY_TIMEOUT = 10.0


def gpu_pids(nvidia_smi: str) -> set[int] | None:
    """Pids holding a GPU context now; None when the query fails (no driver, a hang)."""
    try:
        answer = subprocess.run(  # noqa: S603 - a fixed argv, the binary found on PATH
            [nvidia_smi, *NVIDIA_SMI_QUERY],
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0:
        return None
    pids = set()
    for line in answer.stdout.splitlines():
        line = line.strip()
        if line.isdigit():
            pids.add(int(line))
    return pids


def in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


class GpuSampler:
    """Counts the seconds in which the step's group (its leader's pid) used a GPU."""

    def __init__(self, group: int, interval: float = SAMPLE_SECONDS, nvidia_smi: str | None = None):
        self.group = group
        self.interval = max(interval, 0.05)
        self.nvidia_smi = nvidia_smi or shutil.which("nvidia-smi")
        self.seconds = 0.0
        self.answered = False  # at least one query worked: the count means something
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "GpuSampler":
        if self.nvidia_smi:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> float | None:
        """The GPU seconds counted, or None when nvidia-smi is absent or never answered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(QUERY_TIMEOUT + 1)
        return round(self.seconds, 3) if self.answered else None

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            pids = gpu_pids(self.nvidia_smi)
            now = time.monotonic()
            if pids is not None:
                self.answered = True
                if any(in_group(pid, self.group) for pid in pids):
                    self.seconds += now - last
            last = now
            if self._stop.wait(self.interval):
                return
