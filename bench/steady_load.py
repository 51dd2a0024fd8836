"""Open-loop (wrk2-like) load: request i is due at start + i/RATE whatever happened before.

Each request goes out on the next free one of CONNS keep-alive connections; its latency
runs from when it was due, so a stall of the server shows in full (no coordinated
omission). ``service_time_ms`` runs from the actual send. Prints one JSON object.
Used by api_bench.sh (GET, BODY_FILE "-") and serve_bench.sh (POST of a JSON body).

    steady_load.py HOST PORT PATH HEADERS_FILE BODY_FILE|- RATE SECONDS CONNS

HEADERS_FILE holds one "Name: value" header per line.
"""

import asyncio
import json
import math
import sys
import time
from collections import Counter

TIMEOUT = 10.0

host, port, path, headers_file, body_file = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
rate, duration, conns = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
with open(headers_file) as f:
    headers = "".join(line.strip() + "\r\n" for line in f if line.strip())
if body_file == "-":
    REQUEST = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}User-Agent: bench-steady\r\n\r\n"
    ).encode()
else:
    with open(body_file, "rb") as f:
        body = f.read()
    REQUEST = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "User-Agent: bench-steady\r\n\r\n"
    ).encode() + body


def percentiles(values):
    values = sorted(values)
    out = {}
    for p in (50, 90, 95, 99, 99.9, 100):
        rank = min(len(values), max(1, math.ceil(p / 100 * len(values))))
        out[f"p{p}"] = round(values[rank - 1] * 1000, 2) if values else None
    return out


async def main():
    pool = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection(host, port))
    due_lat, svc_lat, statuses, errors = [], [], Counter(), Counter()

    async def one(due):
        reader, writer = await pool.get()
        sent = time.perf_counter()
        try:
            writer.write(REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
            done = time.perf_counter()
            statuses[int(head[9:12])] += 1
            due_lat.append(done - due)
            svc_lat.append(done - sent)
            pool.put_nowait((reader, writer))
        except Exception as exc:
            errors[type(exc).__name__] += 1
            writer.close()
            try:
                pool.put_nowait(await asyncio.open_connection(host, port))
            except OSError as exc2:
                errors["reconnect " + type(exc2).__name__] += 1

    total = int(rate * duration)
    tasks = set()
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=TIMEOUT + 5)
    elapsed = time.perf_counter() - start
    return {
        "target_rps": rate,
        "connections": conns,
        "requests": total,
        "completed": len(due_lat),
        "unfinished": len(tasks),
        "achieved_rps": round(len(due_lat) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "latency_ms": percentiles(due_lat),
        "service_time_ms": percentiles(svc_lat),
    }


result = asyncio.run(main())
print(json.dumps(result, indent=1))
