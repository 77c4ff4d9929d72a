"""The asyncio request generator of runs 16, 17, 19 and 20 (README.md): tried as `bench.serving --generator asyncio`, not kept.

Kept here, beside the data it made, as it ran (it was `bench/serving_open_loop.py`, imported by
`bench.serving_load._load_child`). One event loop sends each request when due over keep-alive
connections, instead of 32 threads over `http.client`. It did not lower the tail (README.md), and
asyncio's timers are whole milliseconds, which made its own delay p50 ~0.7 ms against ~0.1 ms.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.common import percentile


class _BadAnswer(Exception):
    pass


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer with a Content-Length body; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise _BadAnswer("answer without Content-Length")
    await reader.readexactly(length)
    return status


async def _run(port: int, rate: float, duration_s: float, bodies: list[bytes], connections: int,
               series: bool) -> dict[str, Any]:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    freed = asyncio.Condition()
    opened = peak = 0
    lat_ms: list[float] = []
    service_ms: list[float] = []
    late_ms: list[float] = []
    per_request: list[tuple[float, float, float]] = []
    errors: list[str] = []

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened, peak
        async with freed:
            while not idle and opened >= connections:
                await freed.wait()
            if idle:
                return idle.pop()
            opened += 1
            peak = max(peak, opened)
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            async with freed:
                opened -= 1
                freed.notify()
            raise

    async def one(at: float, body: bytes) -> None:
        nonlocal opened
        request = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            reader, writer = await connection()
        except OSError as exc:
            errors.append(type(exc).__name__)
            return
        sent = time.perf_counter()
        try:
            writer.write(request)
            status = await asyncio.wait_for(_answer(reader), timeout=10)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, IndexError,
                _BadAnswer) as exc:
            writer.close()
            async with freed:
                opened -= 1
                freed.notify()
            errors.append(type(exc).__name__)
            return
        done = time.perf_counter()
        async with freed:
            idle.append((reader, writer))
            freed.notify()
        if status != 200:
            errors.append(str(status))
            return
        late_ms.append((sent - at) * 1000)
        lat_ms.append((done - at) * 1000)
        service_ms.append((done - sent) * 1000)
        if series:
            per_request.append((at, (sent - at) * 1000, (done - sent) * 1000))

    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.2
    n = int(rate * duration_s)
    tasks = []
    for i in range(n):
        at = t0 + i / rate
        wait = at - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(at, bodies[i % len(bodies)])))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    for _, writer in idle:
        writer.close()
    epoch = time.time() - time.perf_counter()
    extra = {"series": sorted([round((at + epoch) * 1000, 1), round(late, 2), round(svc, 2)] for at, late, svc in per_request)} if series else {}
    return {**extra, "offered_rps": rate, "requests": n, "ok": len(lat_ms), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "connections": connections, "connections_opened": peak, "generator": "asyncio",
            "client_cpu_share": round(client_cpu / wall, 3) if wall > 0 else None,
            "achieved_rps": len(lat_ms) / wall if wall > 0 else 0.0,
            "latency_p50_ms": percentile(lat_ms, 50), "latency_p95_ms": percentile(lat_ms, 95),
            "latency_p99_ms": percentile(lat_ms, 99), "latency_max_ms": max(lat_ms) if lat_ms else None,
            "service_p50_ms": percentile(service_ms, 50), "service_p95_ms": percentile(service_ms, 95),
            "service_p99_ms": percentile(service_ms, 99), "late_p99_ms": percentile(late_ms, 99)}


def load(port: int, rate: float, duration_s: float, events: list[dict[str, Any]], connections: int = 32,
         series: bool = False) -> dict[str, Any]:
    """`bench.serving_load.load`'s measurement (same fields) from one event loop."""
    bodies = [orjson.dumps({"id": ev["id"], "features": ev["features"]}) for ev in events]
    return asyncio.run(_run(port, rate, duration_s, bodies, connections, series))
