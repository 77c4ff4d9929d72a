"""The serving bench's per-request series and its publish-burst account (bench.serving_load, bench.serving_series)."""

from __future__ import annotations

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.serving_load import load
from bench.serving_series import burst_starts, near_publishes


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as HAProxy and the replica answer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"prediction": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_series_has_every_answered_request_due_on_the_schedule() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = time.time() * 1000
        res = load(server.server_address[1], 100.0, 0.5, [{"id": 1, "features": {"x": 1.0}}], connections=4, series=True)
        assert "series" not in load(server.server_address[1], 10.0, 0.0, [{"id": 1, "features": {}}])  # only when asked
    finally:
        server.shutdown()
    series = res["series"]
    assert res["ok"] == len(series) == 50 and res["errors"] == 0
    dues = [row[0] for row in series]
    assert dues == sorted(dues) and before <= dues[0] <= time.time() * 1000
    gaps = [b - a for a, b in itertools.pairwise(dues)]
    assert all(9.5 <= g <= 10.5 for g in gaps)  # 1 / 100 req/s, to the 0.1 ms the series keeps
    assert all(late >= 0 and service > 0 for _, late, service in series)
    assert res["latency_p99_ms"] >= res["service_p99_ms"] > 0


def test_slow_requests_are_counted_near_a_burst_only_when_they_overlap_it() -> None:
    announcements = [[0, 1, 1000.0, None], [1, 1, 1100.0, None], [2, 1, 1250.0, None], [0, 2, 3000.0, None]]
    assert burst_starts(announcements) == [1000.0, 3000.0]
    series = [[850.0, 1.0, 30.0],   # slow, ends 881: before the window (900)
              [890.0, 0.0, 25.0],   # slow, overlaps 900..1300
              [2000.0, 0.0, 40.0],  # slow, between bursts
              [1200.0, 0.0, 2.0],   # fast, near
              [2500.0, 0.0, 2.0]]   # fast, far
    res = near_publishes(series, announcements, threshold_ms=20.0, before_ms=100.0, after_ms=300.0)
    assert (res["slow"], res["slow_near"], res["bursts"]) == (3, 1, 2)
    assert res["share_of_slow_near"] == 0.333 and res["share_of_all_near"] == 0.4
