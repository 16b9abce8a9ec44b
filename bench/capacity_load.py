"""The load of the capacity benchmark, as asyncio tasks over aiohttp in one process.

- Simulated step workers: each holds one running task and does what a real worker does
  while its step runs, at the intervals the real worker would use: a task heartbeat every
  `heartbeat_seconds` and its presence every `presence_seconds`, each after the previous
  answer (the worker's threads wait the interval after each request), each on its own
  kept-alive connection, with the real worker's heartbeat timeout. As the real worker does
  (pipelines/worker/heartbeat.py), it skips a presence beat while an accepted task heartbeat
  is newer than `presence_seconds`: the server counts that as its presence.
- Clients logging: each posts a batch of scalars every second and a batch of console lines
  every half second to its own task (the SDK's flush intervals), with a batch id, and sends a
  batch again until it is acknowledged, as the SDK does.
- Pipelines: each driver starts a 10-step server-driven run, follows it as
  `PipelineController.wait()` does (the same polling pauses), and starts the next when it ends.

Latencies are recorded per endpoint kind for requests that start inside the measured window.
The window ends after `duration` seconds, or, for the harness's own test, once every kind has
`until_counts` samples (bounded by count, not by time).
"""

import asyncio
import concurrent.futures
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

from pipelines.run_driver import TERMINAL, poll_pause


@dataclass
class LoadPlan:
    url: str
    worker_key: str
    user_key: str
    sim_tasks: list[str]
    client_tasks: list[str]
    heartbeat_seconds: float
    presence_seconds: float
    heartbeat_timeout: float
    worker_queues: list[str]
    project_name: str
    pipeline_steps: list[dict]
    pipeline_queue: str
    pipelines: int
    scalars_per_batch: int = 50
    lines_per_batch: int = 10
    scalar_seconds: float = 1.0
    console_seconds: float = 0.5
    warmup: float = 5.0
    duration: float | None = 120.0
    until_counts: dict[str, int] | None = None
    until_pipelines: int = 0
    request_timeout: float = 60.0
    # Called as the measured window starts and ends (the benchmark reads CPU times there).
    on_window: object = None


@dataclass
class Recorder:
    """Latencies (ms) per endpoint kind, counted from the start of the measured window."""

    started: float = 0.0
    window_start: float = 0.0
    window_end: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    scalars_acked: int = 0
    lines_acked: int = 0
    leases_lost: int = 0
    pipelines_completed: int = 0
    pipelines_failed: int = 0
    pipeline_seconds: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def measuring(self, at: float) -> bool:
        return self.window_start <= at and (not self.window_end or at <= self.window_end)

    def record(self, kind: str, began: float, ok: bool) -> None:
        if not self.measuring(began):
            return
        self.requests += 1
        if ok:
            self.latencies.setdefault(kind, []).append((time.monotonic() - began) * 1000)
        else:
            self.errors[kind] = self.errors.get(kind, 0) + 1


class Api:
    """One kept-alive connection (or a small pool) with a key; every call is recorded."""

    def __init__(self, plan: LoadPlan, key: str, recorder: Recorder, limit: int = 1):
        self.base = plan.url.rstrip("/") + "/api/v1/"
        self.recorder = recorder
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {key}"},
            connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=600),
        )

    async def call(self, kind: str, method: str, path: str, body=None, timeout: float = 60.0):
        """(status, json or None); status 0 for a connection error or a timeout."""
        began = time.monotonic()
        try:
            async with self.session.request(
                method,
                self.base + path,
                json=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                data = await response.json(content_type=None) if response.status < 300 else None
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            status, data = 0, None
        self.recorder.record(kind, began, 200 <= status < 300)
        return status, data

    async def close(self) -> None:
        await self.session.close()


async def _pause(recorder: Recorder, seconds: float) -> bool:
    """Sleep, or return False at once when the load stops."""
    try:
        await asyncio.wait_for(recorder.stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


async def simulated_worker(plan: LoadPlan, recorder: Recorder, index: int, task_id: str):
    api = Api(plan, plan.worker_key, recorder)
    name = f"sim-{index}"
    presence = {
        "name": name,
        "queues": plan.worker_queues,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }

    last_accepted = [float("-inf")]  # when the server last accepted a beat of this worker

    async def heartbeats():
        holding = True
        # Workers do not start in step: spread the first beats over one interval.
        if not await _pause(recorder, random.uniform(0, plan.heartbeat_seconds)):
            return
        while holding:
            sent = time.monotonic()
            status, data = await api.call(
                "heartbeat",
                "POST",
                f"tasks/{task_id}/heartbeat/",
                {"attempt": 1, "worker": name},
                timeout=plan.heartbeat_timeout,
            )
            if status == 200 and not data.get("keep_running"):
                recorder.leases_lost += 1
                holding = False
                continue
            if status == 200:
                last_accepted[0] = max(last_accepted[0], sent)
            if not await _pause(recorder, plan.heartbeat_seconds):
                return

    async def presence_beats():
        if not await _pause(recorder, random.uniform(0, plan.presence_seconds)):
            return
        registered = False
        while True:
            silent = time.monotonic() - last_accepted[0]
            if registered and silent < plan.presence_seconds:
                wait = max(0.05, plan.presence_seconds - silent)
            else:
                status, _ = await api.call(
                    "worker presence",
                    "POST",
                    "workers/heartbeat/",
                    presence,
                    timeout=plan.heartbeat_timeout,
                )
                if status == 200:
                    registered = True
                    last_accepted[0] = time.monotonic()
                wait = plan.presence_seconds
            if not await _pause(recorder, wait):
                return

    try:
        await asyncio.gather(heartbeats(), presence_beats())
    finally:
        await api.close()


async def _send_until_acked(api: Api, kind: str, path: str, body: dict, recorder: Recorder):
    """What the SDK does with a batch: send it again, same id, until the server has it."""
    deadline = time.monotonic() + 60
    while True:
        status, _ = await api.call(kind, "POST", path, body)
        if 200 <= status < 300:
            return True
        if (status and status not in (502, 503, 504)) or time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)


async def logging_client(plan: LoadPlan, recorder: Recorder, index: int, task_id: str):
    api = Api(plan, plan.user_key, recorder, limit=2)

    async def scalars():
        iteration = 0
        await asyncio.sleep(random.uniform(0, plan.scalar_seconds))
        while not recorder.stop.is_set():
            events = []
            for _ in range(plan.scalars_per_batch // 5):
                for series in ("loss", "accuracy", "lr", "grad_norm", "throughput"):
                    events.append(
                        {
                            "type": "scalar",
                            "title": "train",
                            "series": series,
                            "iteration": iteration,
                            "value": random.random(),
                        }
                    )
                iteration += 1
            body = {"batch_id": uuid.uuid4().hex, "events": events}
            if await _send_until_acked(api, "scalars", f"tasks/{task_id}/events/", body, recorder):
                recorder.scalars_acked += len(events)
            await _pause(recorder, plan.scalar_seconds)

    async def console():
        number = 0
        await asyncio.sleep(random.uniform(0, plan.console_seconds))
        while not recorder.stop.is_set():
            lines = []
            for _ in range(plan.lines_per_batch):
                lines.append({"stream": "stdout", "text": f"client {index} line {number}"})
                number += 1
            body = {"batch_id": uuid.uuid4().hex, "lines": lines}
            if await _send_until_acked(api, "console", f"tasks/{task_id}/console/", body, recorder):
                recorder.lines_acked += len(lines)
            await _pause(recorder, plan.console_seconds)

    try:
        await asyncio.gather(scalars(), console())
    finally:
        await api.close()


async def pipeline_driver(plan: LoadPlan, recorder: Recorder, index: int):
    api = Api(plan, plan.user_key, recorder)
    number = 0
    try:
        while not recorder.stop.is_set():
            number += 1
            status, controller = await api.call(
                "task create",
                "POST",
                "tasks/",
                {
                    "project_name": plan.project_name,
                    "name": f"pipeline {index}.{number}",
                    "type": "controller",
                },
            )
            if status != 201:
                await asyncio.sleep(1)
                continue
            began = time.monotonic()
            status, run = await api.call(
                "pipeline start",
                "POST",
                "pipelines/",
                {
                    "controller": controller["id"],
                    "steps": plan.pipeline_steps,
                    "default_queue": plan.pipeline_queue,
                },
            )
            if status != 201:
                await asyncio.sleep(1)
                continue
            while run["status"] not in TERMINAL:
                if not await _pause(recorder, poll_pause(began)):
                    return
                status, fresh = await api.call("pipeline poll", "GET", f"pipelines/{run['id']}/")
                if status == 200:
                    run = fresh
            if recorder.measuring(time.monotonic()):
                if run["status"] == "completed":
                    recorder.pipelines_completed += 1
                    recorder.pipeline_seconds.append(time.monotonic() - began)
                else:
                    recorder.pipelines_failed += 1
    finally:
        await api.close()


async def _watch_for_end(plan: LoadPlan, recorder: Recorder) -> None:
    await asyncio.sleep(plan.warmup)
    recorder.window_start = time.monotonic()
    if plan.on_window:
        plan.on_window("start")
    if plan.duration is not None:
        await asyncio.sleep(plan.duration)
    else:
        wanted = plan.until_counts or {}

        def enough() -> bool:
            ended = recorder.pipelines_completed + recorder.pipelines_failed
            return ended >= plan.until_pipelines and all(
                len(recorder.latencies.get(kind, [])) >= count for kind, count in wanted.items()
            )

        while not enough():
            await asyncio.sleep(0.1)
    recorder.window_end = time.monotonic()
    if plan.on_window:
        plan.on_window("end")
    recorder.stop.set()


async def run_load_async(plan: LoadPlan) -> Recorder:
    recorder = Recorder(started=time.monotonic())
    recorder.window_start = float("inf")
    jobs = [
        *(simulated_worker(plan, recorder, i, t) for i, t in enumerate(plan.sim_tasks)),
        *(logging_client(plan, recorder, i, t) for i, t in enumerate(plan.client_tasks)),
        *(pipeline_driver(plan, recorder, i) for i in range(plan.pipelines)),
    ]
    watcher = asyncio.ensure_future(_watch_for_end(plan, recorder))
    await asyncio.gather(*jobs, watcher)
    return recorder


def run_load(plan: LoadPlan) -> Recorder:
    # On a thread of its own: the caller's thread may already run an event loop (a
    # synchronous Playwright session does), and asyncio.run() refuses to nest in one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run_load_async(plan)).result()
