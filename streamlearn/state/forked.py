"""Checkpoints written by a forked child, so a large model does not stall its partitions.

Pickling a Hoeffding tree that has seen 50k events takes about 30 ms and
writing its 1.7 MB to Redis (AOF, `appendfsync always`) about as long again.
Inline, every checkpoint stops the worker's loop for that time, for all of
its partitions: 14.5 % of throughput at one checkpoint per second
(docs/benchmarks.md). `fork()` takes a copy-on-write snapshot of the
committed state in about a millisecond (Redis's own BGSAVE does the same);
the child pickles, signs and writes it while the parent goes on.

The protocol is unchanged: the parent forks only right after a commit, when
no transaction is open, so the snapshot is exactly the state at the
committed offset (I4); the write is the same epoch-checked Lua CAS, so a
child of a fenced owner is refused like the owner itself would be (I3). A
child that outlives its parent (the worker was SIGKILLed) either lands
before the next owner bumps the epoch, which is a valid checkpoint at a
committed offset, or is refused after.

Rules for the child, whose parent has librdkafka, gRPC and Ray threads that
do not exist after the fork: it uses none of the parent's clients and opens
its own Redis connection; it disables the garbage collector (a finaliser of
a parent object could call into a library whose threads are gone); it
reports on a pipe and leaves with `os._exit`, never running atexit hooks or
finalisers. At most one child per partition is in flight. It keeps the
parent's process title (`ray::PartitionWorker...`; renaming it would take
Ray's title lock, which a parent thread may hold at the fork): tools tell it
apart by its parent, a PartitionWorker.

A child forked from a multi-threaded process can deadlock on a lock some
parent thread held at the fork. A hung child would block its partition's
checkpoints and a graceful stop for ever, so each child has a deadline
(`checkpoint.child_timeout_s`): past it the parent SIGKILLs it, reports the
jobs as failed (`Outcome.timed_out`), counts it (`timeouts`) and writes the
next checkpoint of those partitions inline (`take_inline`).

The parent hands over `Snapshot` values (partition, epoch, offset, state,
key), never the protocol's own objects: this module knows nothing of
`streamlearn.eos`, which applies the children's `Outcome`s itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from connectors.redis_store import CasResult, CheckpointStore
from streamlearn import faults
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

AVAILABLE = hasattr(os, "fork") and os.name == "posix"
_CHILD_FAILED = 70  # exit status of a child that could not report (EX_SOFTWARE)


@dataclass(frozen=True)
class Snapshot:
    """One partition's committed state, as the protocol hands it over right after a commit.

    `offset` and `events` are fixed when the snapshot is taken; `state` is the
    live object, which the fork copies as it is at that moment (the parent goes
    on changing its own).
    """

    partition_id: int
    epoch: int
    offset: int
    events: int
    state: ModelState
    key: bytes  # the checkpoint signing key
    progress: int = -1  # the protocol's own measure of how far the state has read (label mode: events + labels)
    # Run in the child once the checkpoint has landed (publishing a model version); its one-line
    # report comes back in `Outcome.after`. This module knows nothing of what it does.
    after: Callable[[ModelState, CheckpointStore], str] | None = None


@dataclass(frozen=True)
class Job:
    """What the parent knew when it forked: applied to the partition only once the child reports."""

    partition_id: int
    epoch: int
    offset: int
    events: int
    started: float
    progress: int = -1


@dataclass(frozen=True)
class Outcome:
    job: Job
    result: CasResult | None  # None: the child failed before the CAS (Redis down, crash)
    nbytes: int
    error: str = ""
    timed_out: bool = False  # the child passed its deadline and was killed
    after: str = ""  # the report of the snapshot's `after` hook, if it ran


@dataclass
class _Child:
    fd: int
    jobs: list[Job]
    deadline: float
    buf: bytes = b""

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.buf += chunk

    def outcomes(self, status: int, timed_out: bool = False) -> list[Outcome]:
        by_part: dict[int, Outcome] = {}
        after: dict[int, str] = {}
        for line in self.buf.decode(errors="replace").splitlines():
            try:
                part, code, current, nbytes, *err = line.split(" ", 4)
                if code == "after":  # "<part> after - - <report>"
                    after[int(part)] = err[0] if err else ""
                    continue
                job = next(j for j in self.jobs if j.partition_id == int(part))
                res = None if code == "x" else CasResult(int(code) == 1, int(code), int(current))
                by_part[job.partition_id] = Outcome(job, res, int(nbytes), err[0] if err else "")
            except (ValueError, StopIteration):
                continue  # not a report line: the job counts as failed below
        died = ("checkpoint child passed its deadline and was killed; the next checkpoint is written inline"
                if timed_out else f"checkpoint child exited with status {os.waitstatus_to_exitcode(status)} before reporting")
        out = [by_part.get(j.partition_id, Outcome(j, None, 0, died, timed_out)) for j in self.jobs]
        return [dataclasses.replace(o, after=after[o.job.partition_id]) if o.job.partition_id in after else o for o in out]


class ForkedCheckpointer:
    """Children in flight, at most one per partition (partitions commit at different moments,
    so one child per worker would starve the partitions whose commits keep finding it busy)."""

    def __init__(self, open_store: Callable[[], CheckpointStore], timeout_s: float = 30.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"checkpoint child timeout must be positive (got {timeout_s})")
        self._open_store = open_store
        self._timeout_s = timeout_s
        self._children: dict[int, _Child] = {}
        self._inline_next: set[int] = set()
        self.started = 0  # children forked
        self.timeouts = 0  # children killed at their deadline

    @property
    def busy(self) -> bool:
        return bool(self._children)

    @property
    def in_flight(self) -> set[int]:
        """Partitions with a checkpoint child still running."""
        return {j.partition_id for c in self._children.values() for j in c.jobs}

    def take_inline(self, partition_id: int) -> bool:
        """True once after a child of this partition timed out: write its next checkpoint inline."""
        if partition_id in self._inline_next:
            self._inline_next.discard(partition_id)
            return True
        return False

    def rss_bytes(self) -> int:
        """Resident memory of the children in flight (copy-on-write pages they touched count too)."""
        return sum(_rss_bytes(pid) for pid in list(self._children))  # list(): ping reads it from another thread

    def start(self, snapshots: list[Snapshot]) -> list[Job]:
        """Fork one child that checkpoints every snapshot given; the parent returns at once."""
        busy = self.in_flight & {s.partition_id for s in snapshots}
        if busy:  # an explicit check: `assert` vanishes under python -O
            raise RuntimeError(f"checkpoint child already in flight for partitions {sorted(busy)}")
        now = time.monotonic()
        jobs = [Job(s.partition_id, s.epoch, s.offset, s.events, now, s.progress) for s in snapshots]
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            raise
        if pid == 0:  # child
            os.close(r)
            _child(snapshots, self._open_store, w)
        os.close(w)
        os.set_blocking(r, False)
        self._children[pid] = _Child(r, jobs, now + self._timeout_s)
        self.started += 1
        return jobs

    def poll(self, wait: bool = False) -> list[Outcome]:
        """Outcomes of the children that have exited or passed their deadline (all of them if `wait`).

        Waiting never outlasts the children's deadlines: a hung child is killed.
        """
        out = self._reap()
        while wait and self._children:
            remaining = min(c.deadline for c in self._children.values()) - time.monotonic()
            # A child's pipe turns readable when it reports or exits (EOF): no busy loop.
            select.select([c.fd for c in self._children.values()], [], [], max(remaining, 0.0))
            out += self._reap()
        return out

    def _reap(self) -> list[Outcome]:
        out: list[Outcome] = []
        now = time.monotonic()
        for pid, child in list(self._children.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            child.drain()
            timed_out = False
            if done == 0:
                if now < child.deadline:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                child.drain()
                timed_out = True
                self.timeouts += 1
                self._inline_next |= {j.partition_id for j in child.jobs}
            os.close(child.fd)
            del self._children[pid]
            out += child.outcomes(status, timed_out)
        return out

    def close(self) -> None:
        """Wait for the children in flight, up to their deadlines (a graceful stop must not leave one writing behind it)."""
        self.poll(wait=True)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _child(snapshots: list[Snapshot], open_store: Callable[[], CheckpointStore], w: int) -> None:
    gc.disable()
    code = 0
    try:
        store = open_store()
        for s in snapshots:
            try:
                blob = checkpoint.encode(s.state, s.key)
                if faults.ENABLED:
                    faults.point("mid_checkpoint")
                res = store.write_checkpoint(s.partition_id, s.epoch, s.offset, blob)
                line = f"{s.partition_id} {res.code} {res.current} {len(blob)}\n"
                if res.ok and s.after is not None:
                    os.write(w, line.encode())
                    line = f"{s.partition_id} after - - {_one_line(_run_after(s, store))}\n"
            except Exception as exc:  # reported to the parent, which logs it with the partition's context
                line = f"{s.partition_id} x 0 0 {type(exc).__name__}: {str(exc)[:200]}".replace("\n", " ") + "\n"
            os.write(w, line.encode())
    except BaseException:
        code = _CHILD_FAILED
    finally:
        with contextlib.suppress(OSError):
            os.close(w)
        os._exit(code)


def _run_after(s: Snapshot, store: CheckpointStore) -> str:
    """The hook's report; its failure is reported too, never taken for a failed checkpoint."""
    assert s.after is not None
    try:
        return s.after(s.state, store)
    except Exception as exc:
        return f"failed {type(exc).__name__}: {exc}"


def _one_line(text: str) -> str:
    return text.replace("\n", " ")[:500]
