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
finalisers. At most one child per partition is in flight.

The parent hands over `Snapshot` values (partition, epoch, offset, state,
key), never the protocol's own objects: this module knows nothing of
`streamlearn.eos`, which applies the children's `Outcome`s itself.
"""

from __future__ import annotations

import contextlib
import gc
import os
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


@dataclass(frozen=True)
class Job:
    """What the parent knew when it forked: applied to the partition only once the child reports."""

    partition_id: int
    epoch: int
    offset: int
    events: int
    started: float


@dataclass(frozen=True)
class Outcome:
    job: Job
    result: CasResult | None  # None: the child failed before the CAS (Redis down, crash)
    nbytes: int
    error: str = ""


@dataclass
class _Child:
    fd: int
    jobs: list[Job]
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

    def outcomes(self, status: int) -> list[Outcome]:
        by_part: dict[int, Outcome] = {}
        for line in self.buf.decode(errors="replace").splitlines():
            try:
                part, code, current, nbytes, *err = line.split(" ", 4)
                job = next(j for j in self.jobs if j.partition_id == int(part))
                res = None if code == "x" else CasResult(int(code) == 1, int(code), int(current))
                by_part[job.partition_id] = Outcome(job, res, int(nbytes), err[0] if err else "")
            except (ValueError, StopIteration):
                continue  # not a report line: the job counts as failed below
        died = f"checkpoint child exited with status {os.waitstatus_to_exitcode(status)} before reporting"
        return [by_part.get(j.partition_id, Outcome(j, None, 0, died)) for j in self.jobs]


class ForkedCheckpointer:
    """Children in flight, at most one per partition (partitions commit at different moments,
    so one child per worker would starve the partitions whose commits keep finding it busy)."""

    def __init__(self, open_store: Callable[[], CheckpointStore]) -> None:
        self._open_store = open_store
        self._children: dict[int, _Child] = {}

    @property
    def busy(self) -> bool:
        return bool(self._children)

    @property
    def in_flight(self) -> set[int]:
        """Partitions with a checkpoint child still running."""
        return {j.partition_id for c in self._children.values() for j in c.jobs}

    def start(self, snapshots: list[Snapshot]) -> list[Job]:
        """Fork one child that checkpoints every snapshot given; the parent returns at once."""
        assert not self.in_flight & {s.partition_id for s in snapshots}
        now = time.monotonic()
        jobs = [Job(s.partition_id, s.epoch, s.offset, s.events, now) for s in snapshots]
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
        self._children[pid] = _Child(r, jobs)
        return jobs

    def poll(self, wait: bool = False) -> list[Outcome]:
        """Outcomes of the children that have exited (all of them, blocking, if `wait`)."""
        out: list[Outcome] = []
        for pid, child in list(self._children.items()):
            done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
            child.drain()
            if done == 0:
                continue
            os.close(child.fd)
            del self._children[pid]
            out += child.outcomes(status)
        return out

    def close(self) -> None:
        """Wait for the children in flight (a graceful stop must not leave one writing behind it)."""
        self.poll(wait=True)


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
            except Exception as exc:  # reported to the parent, which logs it with the partition's context
                line = f"{s.partition_id} x 0 0 {type(exc).__name__}: {str(exc)[:200]}".replace("\n", " ") + "\n"
            os.write(w, line.encode())
    except BaseException:
        code = _CHILD_FAILED
    finally:
        with contextlib.suppress(OSError):
            os.close(w)
        os._exit(code)
