"""Task list and task get at 100,000 tasks: p50 latency and requests/s."""

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import start_server

from .common import line, machine, summarize, write_result

FILL = """
import uuid
from django.utils import timezone
from datetime import timedelta
from webapp.core.models import Project, Task
from django.contrib.auth import get_user_model
user = get_user_model().objects.get(username="admin")
project, _ = Project.objects.get_or_create(name="bench-api", defaults={{"created_by": user}})
now = timezone.now()
rows = [
    Task(id=uuid.uuid4().hex, project=project, name=f"task {{i}}", status="completed",
         created=now - timedelta(seconds=i), last_update=now, created_by=user,
         hyperparameters={{"General": {{"lr": {{"value": "0.1", "type": "float"}}}}}},
         script={{"entry_point": "train.py", "code": "print(1)\\n" * 50}})
    for i in range({n})
]
Task.objects.bulk_create(rows, batch_size=2000)
print(rows[{n} // 2].id)
"""


def _timed_get(session, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=30)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def run(tasks: int = 100_000, requests_per_case: int = 200) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        server = start_server(Path(folder) / "server")
        try:
            middle = server.manage("shell", "-c", FILL.format(n=tasks)).strip().splitlines()[-1]
            api = server.api()
            cases = {
                "task list (page of 100)": f"{server.url}/api/v1/tasks/?page_size=100",
                "task list, filtered by status": (
                    f"{server.url}/api/v1/tasks/?status=completed&page_size=50"
                ),
                "task get": f"{server.url}/api/v1/tasks/{middle}/",
            }
            result = {"machine": machine(), "tasks": tasks, "cases": {}}
            print(f"API ({tasks:,} tasks, SQLite, waitress)")
            for label, url in cases.items():
                for _ in range(10):
                    _timed_get(api, url)
                latencies = summarize([_timed_get(api, url) for _ in range(requests_per_case)])
                throughput = _throughput(server, url)
                result["cases"][label] = {"latency_ms": latencies, "requests_per_s": throughput}
                target = "<= 150" if label.startswith("task list") else ""
                print(line(f"{label}: p50", latencies["median"], "ms", target))
                print(line(f"{label}: requests/s (4 clients)", throughput, "/s"))
        finally:
            server.stop()
            server.drop_database()
    write_result("api", result)
    return result


def _throughput(server, url: str, clients: int = 4, seconds: float = 3.0) -> float:
    deadline = time.perf_counter() + seconds

    def client() -> int:
        session = server.api()
        count = 0
        while time.perf_counter() < deadline:
            session.get(url, timeout=30).raise_for_status()
            count += 1
        return count

    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(lambda _: client(), range(clients)))
    return total / seconds
