"""One of several concurrent writers: posts console lines, scalars and heartbeats for a task.

argv: server URL, user key, worker key, worker name, task id, seconds. Uses plain requests
with no retries, so every status the server answers is seen. Prints a JSON summary.
"""

import json
import sys
import time
import uuid
from collections import Counter

import requests

url, user_key, worker_key, worker, task_id, seconds = sys.argv[1:7]
base = f"{url}/api/v1/tasks/{task_id}"
user = requests.Session()
user.headers["Authorization"] = f"Bearer {user_key}"
beat = requests.Session()
beat.headers["Authorization"] = f"Bearer {worker_key}"
statuses: Counter = Counter()
lines = scalars = 0
deadline = time.monotonic() + float(seconds)
round_ = 0
while time.monotonic() < deadline:
    batch = [{"stream": "stdout", "text": f"{task_id} line {round_}.{i}"} for i in range(5)]
    response = user.post(f"{base}/console/", json={"lines": batch}, timeout=60)
    statuses[response.status_code] += 1
    lines += len(batch) if response.status_code == 200 else 0
    events = [
        {"type": "scalar", "title": "t", "series": "s", "iteration": round_ * 5 + i, "value": i}
        for i in range(5)
    ]
    response = user.post(
        f"{base}/events/", json={"batch_id": uuid.uuid4().hex, "events": events}, timeout=60
    )
    statuses[response.status_code] += 1
    scalars += len(events) if response.status_code == 200 else 0
    response = beat.post(f"{base}/heartbeat/", json={"attempt": 1, "worker": worker}, timeout=60)
    statuses[response.status_code] += 1
    round_ += 1
print(json.dumps({"statuses": dict(statuses), "lines": lines, "scalars": scalars}))
