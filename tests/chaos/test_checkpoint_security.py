"""Tampered checkpoints are refused before unpickling; secrets never reach logs, status or config output.

Phase 1 runs the app to a graceful stop (checkpoints at K and earlier: a quarter of the events,
a wait for every partition's checkpoint, another quarter, the stop's final checkpoint).
Then Redis is attacked directly: flipped bytes in one blob, a malicious
pickle (one that would create a marker file when unpickled) planted with and
without the streamlearn header, both checkpoints of one partition replaced,
and an authentic blob of partition 0 moved to partition 3 (the MAC covers the partition).
Phase 2 streams more events: the marker must never appear, the refusals are
counted, the worker falls back as configured, and I1/I2 hold over both
phases.
"""

from __future__ import annotations

import builtins
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from streamlearn.state.checkpoint import MAGIC
from tests.chaos.checker import I4Sampler, assert_exactly_once, audit, caught_up
from tests.chaos.harness import STREAMLEARN, ChaosEnv, Scenario, record_result, wait_for


class _Evil:
    """Unpickling this creates `path`: the proof that a pickle was (not) loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (builtins.open, (self.path, "w"))


def _evil_pickle(marker: Path) -> bytes:
    payload = pickle.dumps(_Evil(marker))
    probe = marker.with_name(marker.name + ".selftest")
    pickle.loads(pickle.dumps(_Evil(probe)))  # the payload is live: it does create its file
    assert probe.exists()
    return payload


@pytest.mark.parametrize("policy", ["previous", pytest.param("replay_earliest", marks=pytest.mark.extended(
    reason="a tampered checkpoint is refused in the default tier by the [previous] case and tests/unit/test_checkpoint.py"))])
def test_tampered_checkpoints_are_refused(chaos_env: ChaosEnv, policy: str, tmp_path: Path) -> None:
    sc = Scenario(chaos_env, f"tamper-{policy.replace('_', '-')}", on_invalid=policy)
    r = redis_lib.Redis.from_url(chaos_env.redis_url)

    def key(p: int, kind: str) -> str:
        return f"streamlearn:{sc.app}:{sc.topic}:{p}:{kind}"

    half, quarter = sc.n_events // 2, sc.n_events // 4
    second = sc.events(sc.n_events - half, start=half)
    d1 = sc.start()
    # Two checkpoints per partition by construction: one within the first quarter (each partition's
    # 250th event is due by count, if none was taken earlier by time), waited for; then at least one
    # more, since the second quarter's events are new to the stop's final checkpoint. Produced at
    # once, the interleaving of fetches, commits and checkpoint rounds decided: three of the last
    # four CI runs (with and without the checkpoint round wait) left a partition with a single
    # checkpoint; locally, the worker started before or after the half was produced, all had two.
    assert quarter // 4 >= 250, "CHAOS_EVENTS too small: a quarter must reach checkpoint_every_events (250) per partition"
    sc.produce(sc.events(quarter))
    wait_for(lambda: caught_up(sc, quarter), 600, "phase 1, first quarter committed")
    wait_for(lambda: all(r.hget(key(p, "ckpt"), "blob") for p in range(4)), 120, "a checkpoint of every partition")
    sc.produce(sc.events(half - quarter, start=quarter))
    wait_for(lambda: caught_up(sc, half), 600, "phase 1 committed")
    sc.stop(d1)
    for p in range(3):
        assert r.hget(key(p, "ckpt:prev"), "blob"), f"partition {p} needs a previous checkpoint for this test"

    marker = tmp_path / "pwned"
    evil = _evil_pickle(marker)
    blob = bytearray(r.hget(key(0, "ckpt"), "blob") or b"")
    for i in range(len(blob) // 2, len(blob) // 2 + 8):
        blob[i] ^= 0xFF
    r.hset(key(0, "ckpt"), "blob", bytes(blob))  # p0: flipped bytes in the latest blob
    r.hset(key(1, "ckpt"), "blob", MAGIC + b"\0" * 32 + evil)  # p1: malicious pickle behind a forged header
    r.hset(key(2, "ckpt"), "blob", evil)  # p2: raw malicious pickle in both checkpoints
    r.hset(key(2, "ckpt:prev"), "blob", evil)
    # p3: partition 0's authentic previous blob, signed with the right secret but for another partition
    r.hset(key(3, "ckpt"), "blob", r.hget(key(0, "ckpt:prev"), "blob") or b"")

    with I4Sampler(sc) as i4:
        d2 = sc.start()
        sc.produce(second)
        wait_for(lambda: caught_up(sc, sc.n_events), 600, "phase 2 committed")
        sc.stop(d2)
    refused = {p: int(r.hget(key(p, "counters"), "checkpoints_refused") or 0) for p in range(4)}
    v = audit(sc)
    record_result({"scenario": sc.name, "fault": f"tampered checkpoints (on_invalid: {policy})", "injected": 5, **v.row(),
                   "i4_samples": i4.samples, "i4_violations": len(i4.violations), "refused": refused,
                   "marker_created": marker.exists()})
    assert not marker.exists(), "a planted pickle was unpickled"
    want_p2 = 2 if policy == "previous" else 1
    assert refused[0] >= 1 and refused[1] >= 1 and refused[2] >= want_p2 and refused[3] >= 1, refused
    assert "checkpoint_refused" in d2.log()
    assert_exactly_once(v)
    assert not i4.violations
    _assert_no_secrets(sc)


def _assert_no_secrets(sc: Scenario) -> None:
    """Redis password and checkpoint secret: not in any driver log, `status --json` or `config`."""
    secrets = (sc.env.redis_password, sc.env.checkpoint_secret)
    outputs = {}
    for cmd in (["status", "--json"], ["config"]):
        res = subprocess.run([str(STREAMLEARN), *cmd, "-c", str(sc.config_path)], capture_output=True, text=True,
                             env=sc.cli_env(), timeout=120, check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        outputs[" ".join(cmd)] = res.stdout + res.stderr
    assert '"partitions"' in outputs["status --json"] and "redis" in outputs["config"]
    for log in sc.env.root.rglob("driver-*.log"):
        outputs[str(log)] = log.read_text(errors="replace")
    leaks = [name for name, text in outputs.items() for s in secrets if s in text]
    assert not leaks, f"secret printed in {leaks}"
