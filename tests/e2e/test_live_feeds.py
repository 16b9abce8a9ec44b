"""The results feeds against a real server while batches of one task are stored at once."""

import threading

import pytest

from tests.support import wait_until

pytestmark = pytest.mark.e2e

WRITERS = 6
BATCHES = 15
POINTS = 20


def test_a_reader_following_the_feed_misses_no_point_of_concurrent_batches(server):
    api = server.api()
    task = api.post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "feeds", "name": "concurrent", "start_running": True},
    ).json()
    base = f"{server.url}/api/v1/tasks/{task['id']}"
    errors = []

    def write(writer: int) -> None:
        session = server.api()
        for batch in range(BATCHES):
            events = [
                {
                    "type": "scalar",
                    "title": "loss",
                    "series": f"writer {writer}",
                    "iteration": batch * POINTS + i,
                    "value": float(i),
                }
                for i in range(POINTS)
            ]
            response = session.post(f"{base}/events/", json={"events": events})
            if response.status_code != 200:
                errors.append(response.text)

    seen: set = set()
    seq = 0
    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()

    def read() -> bool:
        nonlocal seq
        payload = api.get(f"{base}/scalars/since/", params={"seq": seq}).json()
        assert payload["reset"] is False
        for line in payload["points"]:
            seen.update((line["series"], x) for x in line["x"])
        seq = payload["seq"]
        return all(not t.is_alive() for t in threads) and len(seen) == WRITERS * BATCHES * POINTS

    wait_until(read, timeout=120, interval=0.01, message="every point through the feed")
    for thread in threads:
        thread.join(30)
    assert errors == []
    # nothing more after the last seq, and the charts hold the same points
    assert api.get(f"{base}/scalars/since/", params={"seq": seq}).json()["points"] == []
    charts = api.get(f"{base}/scalars/charts/").json()
    assert charts["seq"] == seq
    assert sorted(line["points"] for line in charts["series"]) == [BATCHES * POINTS] * WRITERS
