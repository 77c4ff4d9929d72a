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
- every partition answered an event produced after the previous kill (it recovered), and
  caught up: its latest answer came less than `CAUGHT_UP_MS` after the event was produced
  (recovered is not caught up: the events produced during the recovery are still queued,
  and a kill before they are worked off adds them to the next recovery: recoveries then
  grew kill after kill, 4.5, 8.1, 11.7, 12.2, 13.6 s in one run);
- the actor the previous kill hit is up again: the Coordinator's
  `worker_restarted_up` event after that kill (`streamlearn/runtime/restarts.py`
  logs it at WARNING when a ping to the restarted actor first answers);
- and warm: its `standby_warm` event (INFO, `runtime/warm.py`). Up is not ready:
  a standby connects its clients in a background thread after its imports, and
  a run called before that waits for it (once a standby up 0.15 s before the kill spent
  2.3 s of the takeover finishing its 3.5 s warm-up, load ~11).

The first kill waits `FIRST_KILL_S` into the offered load and until every actor
the run started logged `standby_warm`. The events are read from the run's log
file: Ray forwards its actors' stderr to the driver's output (the recovery
runs with INFO logs and Ray's log de-duplication off, which would hold back
a second actor's `standby_warm` for 5 s). The same file gives each kill's
engine timeline (`takeover_timeline` per partition, `eos/takeover.py`).

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
CAUGHT_UP_MS = 1000.0  # a partition's latest answer this close to its event's production: no backlog left
FIRST_KILL_S = 3.0  # the first kill, this long into the offered load (the standby started with the system)
POLL_S = 0.1
#: The engine's events a recovery timeline is made of (the Coordinator's `supervisor`, `restarts`; the workers').
EVENTS = ("worker_died_restarting", "worker_died_replacing", "partitions_moved_to_standby", "partitions_moved_to_restarted",
          "worker_restarted_up", "standby_gone", "worker_replaced", "worker_failed_retrying",
          "standby_warm", "standby_warm_failed", "run_started", "takeover_timeline")
UP = "worker_restarted_up"
WARM = ("standby_warm", "standby_warm_failed")  # failed: the run makes its own clients; nothing more to wait for
#: The next standby is up: the actor Ray restarted, or the fresh one started after `processing.standby_refill_delay_s`.
UP_OR_REFILLED = (UP, *WARM)
LOG_ENV = {"RAY_DEDUP_LOGS": "0"}  # and STREAMLEARN_LOG_LEVEL at INFO at least (`measure`)
# `streamlearn.logs`: "<asctime> <LEVEL> streamlearn.<logger> <event> key=value ...", behind Ray's "(Actor pid=N) ".
_LINE = re.compile(r"(?:pid=(\d+)\)\S*\s+)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ streamlearn\.\w+ (\w+) ?(.*)$")


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds, the logging process's own timestamp (same machine, same clock as the kills)
    name: str
    fields: str
    pid: int | None = None  # the Ray actor's process, from Ray's prefix


def parse_events(lines: Sequence[str]) -> list[Event]:
    out = []
    for line in lines:
        m = _LINE.search(line)
        if m and m.group(3) in EVENTS:
            at = datetime.strptime(m.group(2), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # asctime: local time
            out.append(Event(at, m.group(3), m.group(4).strip(), int(m.group(1)) if m.group(1) else None))
    return out


class EngineLog:
    """The engine's events in the run's log file, read on demand (new whole lines only)."""

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

    def first_after(self, names: str | tuple[str, ...], t: float) -> float | None:
        names = (names,) if isinstance(names, str) else names
        return next((e.at for e in self.read() if e.name in names and e.at >= t), None)

    def warm_actors(self) -> int:
        """Distinct processes that logged their standby warm-up (done or failed) so far."""
        return len({e.pid for e in self.read() if e.name in WARM})

    def between(self, t0: float, t1: float | None) -> list[list[Any]]:
        """[s after t0, event, pid, fields] of the events in [t0, t1): one kill's timeline."""
        return [[round(e.at - t0, 3), e.name, e.pid, e.fields] for e in self.read() if e.at >= t0 and (t1 is None or e.at < t1)]


class Recovered:
    """Per partition since t: whether it answered an event produced at or after t, and whether its latest answer
    is caught up (reader samples (arrival s, produced ms, partition), each scanned once)."""

    def __init__(self, samples: list[tuple[float, float, int]], partitions: int, caught_up_ms: float = CAUGHT_UP_MS) -> None:
        self.samples, self.partitions, self.caught_up_ms = samples, partitions, caught_up_ms
        self._seen = 0
        self._since = 0.0
        self._answered: set[int] = set()
        self._lag_ms: dict[int, float] = {}

    def _scan(self, t: float) -> None:
        if t != self._since:
            self._since, self._seen, self._answered, self._lag_ms = t, 0, set(), {}
        end = len(self.samples)  # appended by the reader's thread: read up to what is there now
        for arr, ts, part in self.samples[self._seen:end]:
            if ts >= t * 1000.0:
                self._answered.add(part)
                self._lag_ms[part] = arr * 1000.0 - ts
        self._seen = end

    def since(self, t: float) -> bool:
        self._scan(t)
        return len(self._answered) >= self.partitions

    def caught_up(self, t: float) -> bool:
        self._scan(t)
        return self.since(t) and all(lag < self.caught_up_ms for lag in self._lag_ms.values())


@dataclass
class KillRecord:
    at: float
    pids: list[int]
    victim_chosen_by: str
    kill_after_prev_s: float | None = None  # None: the first kill
    standby_up_wait_s: float | None = None  # previous kill → the actor it hit up again (None: not seen, or first kill)
    standby_warm_wait_s: float | None = None  # previous kill → that actor's clients warm (`standby_warm`)
    standby_wait_timed_out: bool = False
    prev_recovered_before_kill: bool | None = None
    prev_caught_up_before_kill: bool | None = None
    gated_by: list[str] = field(default_factory=list)  # the conditions still unmet at the last look before it went

    def fields(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("at", "pids", "victim_chosen_by"):
            d.pop(k)
        return d


@dataclass
class Gate:
    """The rule above, over injected signals: `up_after(t)` / `warm_after(t)`, when the restarted actor was up /
    warm after t (None: not yet); `recovered(t)`; `all_warm()`, every actor of the run warm (the first kill)."""

    kill_every_s: float
    up_after: Callable[[float], float | None]
    recovered: Callable[[float], bool]
    warm_after: Callable[[float], float | None] = lambda t: t
    caught_up: Callable[[float], bool] = lambda t: True
    all_warm: Callable[[], bool] = lambda: True
    max_wait_s: float = MAX_WAIT_S
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def first(self, at: float) -> KillRecord:
        """The first kill: at `at`, once every actor is warm (at most max_wait_s later)."""
        last: list[str] = []
        while True:
            now = self.clock()
            pending = [why for why, ok in (("interval", now >= at), ("standby_warm", self.all_warm())) if not ok]
            timed_out = now >= at + self.max_wait_s
            if not pending or timed_out:
                return KillRecord(at=now, pids=[], victim_chosen_by="", standby_wait_timed_out=timed_out and bool(pending),
                                  gated_by=pending or last)
            last = pending
            self.sleep(POLL_S)

    def wait(self, prev: KillRecord) -> KillRecord:
        """Block until the next kill may go; a record with what was waited for (at/pids/victim filled by the caller)."""
        expect_restart = bool(prev.pids)  # a kill that found nobody to kill starts no restart
        last: list[str] = []
        while True:
            now = self.clock()
            up = self.up_after(prev.at) if expect_restart else None
            warm = self.warm_after(prev.at) if expect_restart else None
            rec = self.recovered(prev.at)
            caught = rec and self.caught_up(prev.at)
            pending = [why for why, ok in (("interval", now >= prev.at + self.kill_every_s),
                                           ("standby_up", up is not None or not expect_restart),
                                           ("standby_warm", warm is not None or not expect_restart), ("recovery", rec),
                                           ("caught_up", caught)) if not ok]
            timed_out = now >= prev.at + self.max_wait_s
            if not pending or timed_out:
                return KillRecord(at=now, pids=[], victim_chosen_by="", kill_after_prev_s=round(now - prev.at, 3),
                                  standby_up_wait_s=_since(up, prev.at), standby_warm_wait_s=_since(warm, prev.at),
                                  standby_wait_timed_out=timed_out and bool(pending), prev_recovered_before_kill=rec,
                                  prev_caught_up_before_kill=caught,
                                  gated_by=pending or last)
            last = pending
            self.sleep(POLL_S)


def _since(t: float | None, t0: float) -> float | None:
    return round(t - t0, 3) if t is not None else None


def run_kills(n: int, first_at: float, gate: Gate, victim: Callable[[int], tuple[list[int], str]],
              kill: Callable[[list[int]], None], on_kill: Callable[[int, KillRecord], None] | None = None) -> list[KillRecord]:
    """n kills: the first at `first_at`, each next one when `gate` lets it; `victim(i)` → (pids, how chosen)."""
    out: list[KillRecord] = []
    for i in range(n):
        rec = gate.first(first_at) if i == 0 else gate.wait(out[-1])
        rec.pids, rec.victim_chosen_by = victim(i)
        rec.at = gate.clock()  # after the victim's look-up (a Redis read): the kill's own time
        if out:
            rec.kill_after_prev_s = round(rec.at - out[-1].at, 3)
        kill(rec.pids)
        out.append(rec)
        if on_kill is not None:
            on_kill(i, rec)
    return out
