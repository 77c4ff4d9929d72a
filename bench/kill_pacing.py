"""When the recovery benchmark's next SIGKILL goes: one failure at a time, from steady state.

The kills used to follow a fixed schedule, `kill_every_s` apart. With 1 worker
+ 1 standby, a kill hits the owner, the standby takes its partitions and Ray
restarts the killed actor (5.5-7.5 s measured), which becomes the next
standby. The kill 8 s later then often found that standby up for only
0.6-1.6 s (still warming its clients) or not up at all: kills 2..5 measured
a double failure (no ready standby), not "1 worker + standby" (median 7.93 s,
worst 17.68 s, against 2.7 s for the first kill).

So every kill after the first waits until all of:

- `kill_every_s` have passed since the previous kill;
- every partition answered an event produced after the previous kill (it recovered);
- the actor the previous kill hit is up again: the Coordinator's
  `worker_restarted_up` event after that kill (`streamlearn/runtime/restarts.py`
  logs it at WARNING when a ping to the restarted actor first answers; Ray
  forwards the Coordinator's stderr into the driver's output, the run's log file).

The wait is capped (`MAX_WAIT_S` from the previous kill, Ray's own restart wait
in `restarts.RESTART_WAIT_S`); a kill that waited that long goes anyway and
says so. Each kill records what it waited for (`KillRecord`), so a reader of
the raw file sees the state it was made in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_WAIT_S = 60.0
FIRST_KILL_S = 3.0  # the first kill, this long into the offered load (the standby started with the system)
POLL_S = 0.1
#: The Coordinator's events a recovery timeline is made of (`supervisor`, `restarts`).
EVENTS = ("worker_died_restarting", "worker_died_replacing", "partitions_moved_to_standby", "partitions_moved_to_restarted",
          "worker_restarted_up", "standby_gone", "worker_replaced", "worker_failed_retrying")
UP = "worker_restarted_up"
# `streamlearn.logs`: "<asctime> <LEVEL> streamlearn.coordinator <event> key=value ...", behind Ray's "(Coordinator pid=N) ".
_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ streamlearn\.coordinator (\w+) ?(.*)$")


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds, the Coordinator's own timestamp (same machine, same clock as the kills)
    name: str
    fields: str


def parse_events(lines: Sequence[str]) -> list[Event]:
    out = []
    for line in lines:
        m = _LINE.search(line)
        if m and m.group(2) in EVENTS:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # asctime: local time
            out.append(Event(at, m.group(2), m.group(3).strip()))
    return out


class CoordinatorLog:
    """The Coordinator's events in the run's log file, read on demand (new whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.events: list[Event] = []

    def read(self) -> list[Event]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return self.events
        self._offset += len(data)
        data = self._partial + data
        *whole, self._partial = data.split(b"\n")
        self.events += parse_events([w.decode(errors="replace") for w in whole])
        return self.events

    def first_after(self, name: str, t: float) -> float | None:
        return next((e.at for e in self.read() if e.name == name and e.at >= t), None)

    def between(self, t0: float, t1: float | None) -> list[list[Any]]:
        """[s after t0, event, fields] of the events in [t0, t1): one kill's timeline."""
        return [[round(e.at - t0, 3), e.name, e.fields] for e in self.read() if e.at >= t0 and (t1 is None or e.at < t1)]


class Recovered:
    """Whether every partition answered an event produced at or after t (reader samples, scanned once each)."""

    def __init__(self, samples: list[tuple[float, float, int]], partitions: int) -> None:
        self.samples, self.partitions = samples, partitions
        self._seen = 0
        self._since = 0.0
        self._answered: set[int] = set()

    def since(self, t: float) -> bool:
        if t != self._since:
            self._since, self._seen, self._answered = t, 0, set()
        end = len(self.samples)  # appended by the reader's thread: read up to what is there now
        for _arr, ts, part in self.samples[self._seen:end]:
            if ts >= t * 1000.0:
                self._answered.add(part)
        self._seen = end
        return len(self._answered) >= self.partitions


@dataclass
class KillRecord:
    at: float
    pids: list[int]
    victim_chosen_by: str
    kill_after_prev_s: float | None = None  # None: the first kill
    standby_up_wait_s: float | None = None  # previous kill → the actor it hit up again (None: not seen, or first kill)
    standby_wait_timed_out: bool = False
    prev_recovered_before_kill: bool | None = None
    gated_by: list[str] = field(default_factory=list)  # the conditions still unmet at the last look before it went

    def fields(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("at", "pids", "victim_chosen_by"):
            d.pop(k)
        return d


@dataclass
class Gate:
    """The rule above, over injected signals (`up_after(t)`: when the restarted actor was up after t; `recovered(t)`)."""

    kill_every_s: float
    up_after: Callable[[float], float | None]
    recovered: Callable[[float], bool]
    max_wait_s: float = MAX_WAIT_S
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def wait(self, prev: KillRecord) -> KillRecord:
        """Block until the next kill may go; a record with what was waited for (at/pids/victim filled by the caller)."""
        expect_restart = bool(prev.pids)  # a kill that found nobody to kill starts no restart
        last: list[str] = []
        while True:
            now = self.clock()
            up = self.up_after(prev.at) if expect_restart else None
            rec = self.recovered(prev.at)
            pending = [why for why, ok in (("interval", now >= prev.at + self.kill_every_s),
                                           ("standby_up", up is not None or not expect_restart), ("recovery", rec)) if not ok]
            timed_out = now >= prev.at + self.max_wait_s
            if not pending or timed_out:
                return KillRecord(at=now, pids=[], victim_chosen_by="", kill_after_prev_s=round(now - prev.at, 3),
                                  standby_up_wait_s=round(up - prev.at, 3) if up is not None else None,
                                  standby_wait_timed_out=timed_out and bool(pending), prev_recovered_before_kill=rec,
                                  gated_by=pending or last)
            last = pending
            self.sleep(POLL_S)


def run_kills(n: int, first_at: float, gate: Gate, victim: Callable[[int], tuple[list[int], str]],
              kill: Callable[[list[int]], None], on_kill: Callable[[int, KillRecord], None] | None = None) -> list[KillRecord]:
    """n kills: the first at `first_at`, each next one when `gate` lets it; `victim(i)` → (pids, how chosen)."""
    out: list[KillRecord] = []
    for i in range(n):
        if i == 0:
            gate.sleep(max(0.0, first_at - gate.clock()))
            rec = KillRecord(at=gate.clock(), pids=[], victim_chosen_by="")
        else:
            rec = gate.wait(out[-1])
        rec.pids, rec.victim_chosen_by = victim(i)
        rec.at = gate.clock()  # after the victim's look-up (a Redis read): the kill's own time
        if out:
            rec.kill_after_prev_s = round(rec.at - out[-1].at, 3)
        kill(rec.pids)
        out.append(rec)
        if on_kill is not None:
            on_kill(i, rec)
    return out
