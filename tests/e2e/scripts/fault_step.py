"""A step whose misbehaviour the test picks with the `mode` parameter.

Every run appends "TASK attempt=N pid=P" to runs.txt in the handshake dir, so a test can
count executions. Modes:
- record: exit 0;
- wait: until the file `go_file` appears in the handshake dir;
- sigkill: the step kills itself; kill_worker: it kills its worker;
- rlimit: allocates past an address-space limit it sets itself;
- flood: huge console output;
- partial_upload: declares a 20 MB artifact, sends a fifth of it and hangs up.
"""

import hashlib
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from pipelines import Task

task = Task.init(project_name="e2e-faults", task_name="fault step")
args = {"mode": "record", "handshake_dir": "", "go_file": "go", "wait_seconds": 60.0}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

folder = Path(args["handshake_dir"])
with open(folder / "runs.txt", "a") as handle:
    handle.write(f"{task.id} attempt={task.data['attempt']} pid={os.getpid()}\n")
print(f"STEP STARTED mode={args['mode']}", flush=True)
mode = args["mode"]

if mode == "sigkill":
    # What the kernel's OOM killer does to a step: no exception, no exit code, just gone.
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "kill_worker":
    # A poison task: it takes its worker down (step -> guard -> worker) on every delivery.
    guard_stat = Path(f"/proc/{os.getppid()}/stat").read_text()
    os.kill(int(guard_stat.rpartition(")")[2].split()[1]), signal.SIGKILL)
    time.sleep(30)
elif mode == "rlimit":
    limit = 256 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hoard = bytearray(1024 * 1024 * 1024)
elif mode == "wait":
    go = folder / args["go_file"]
    deadline = time.monotonic() + args["wait_seconds"]
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {go.name} within {args['wait_seconds']}s")
        time.sleep(0.05)
elif mode == "flood":
    out = sys.stdout.buffer
    pad = b"x" * 88
    # 100 MB in 1M lines, written in 1 MB blocks: faster than any reader.
    for block in range(100):
        out.write(b"".join(b"%07d %s\n" % (block * 10_000 + i, pad) for i in range(10_000)))
    # 20 MB without a single newline.
    chunk = b"y" * (1024 * 1024)
    for _ in range(20):
        out.write(chunk)
    out.write(b"\n")
    # Long lines that JSON escapes to six bytes a character: 2,000 of them are ~50 MB of
    # JSON, more than the server takes in one request.
    wide = ("\u00e9" * 4000).encode()
    for i in range(2000):
        out.write(b"%04d " % i + wide + b"\n")
    out.flush()
    print("FLOOD DONE", flush=True)
elif mode == "partial_upload":
    content = b"z" * (20 * 1024 * 1024)
    declared = task._client.post(
        f"tasks/{task.id}/artifacts/",
        {
            "name": "big",
            "kind": "file",
            "filename": "big.bin",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        },
    )
    boundary = "faultboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    server = urlsplit(os.environ["PIPELINES_API_URL"])
    request = (
        f"PUT /api/v1/artifacts/{declared['id']}/upload/ HTTP/1.1\r\n"
        f"Host: {server.netloc}\r\n"
        f"Authorization: Bearer {os.environ['PIPELINES_API_KEY']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + len(content) + len(tail)}\r\n\r\n"
    ).encode()
    with socket.create_connection((server.hostname, server.port), timeout=30) as sock:
        sock.sendall(request + head + content[: 5 * 1024 * 1024])
    # The connection is gone with 15 MB still owed, as when an uploading process dies.
    print("ARTIFACT", declared["id"], flush=True)
print("STEP DONE", flush=True)
