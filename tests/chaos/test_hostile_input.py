"""Hostile input mixed into a normal stream: each bad record goes to the DLQ with its reason.

No worker may crash (zero recoveries), the records around each bad one get
their predictions (I1), and the models equal a fault-free replay (I2),
because bad records are skipped identically live and on replay.
"""

from __future__ import annotations

import json

import orjson
import redis as redis_lib

from tests.chaos.checker import I4Sampler, assert_exactly_once, audit, caught_up
from tests.chaos.harness import PARTITIONS, ChaosEnv, Scenario, record_result, wait_for

PROCESSED = "(processed: valid event)"


def _ev(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {"id": "h", "features": {"x0": 0.5, "x1": -1.0}, "label": True}
    doc.update(over)
    return doc


def _nested(depth: int) -> bytes:
    return b'{"id": "deep", "features": {"x0": ' + b"[" * depth + b"]" * depth + b"}}"


# (case, key, value, expected DLQ code or PROCESSED)
CORPUS: list[tuple[str, bytes | None, bytes | None, str]] = [
    ("invalid JSON (truncated)", b"k1", b'{"id": "h1", "features": {"x0": 1.0', "invalid_json"),
    ("non-UTF-8 bytes", b"k2", b'{"id": "h2", "features": {"x0": "\xff\xfe"}}', "invalid_utf8"),
    ("empty value", b"k3", b"", "empty_value"),
    ("null value (tombstone)", b"k4", None, "empty_value"),
    ("null key, valid value", None, orjson.dumps(_ev(id="h5")), PROCESSED),
    ("null key, invalid value", None, b"not json at all", "invalid_json"),
    ("top level is an array", b"k7", b"[1, 2, 3]", "not_an_object"),
    ("wrong type: features is a list", b"k8", orjson.dumps(_ev(id="h8", features=[1, 2])), "bad_features"),
    ("wrong type: id is a float", b"k9", orjson.dumps(_ev(id=1.5)), "bad_id"),
    ("wrong type: feature is an object", b"k10", orjson.dumps(_ev(id="h10", features={"x0": {"a": 1}})), "bad_feature_type"),
    ("wrong type: feature is null", b"k11", orjson.dumps(_ev(id="h11", features={"x0": None})), "bad_feature_type"),
    ("wrong type: ts is a string", b"k12", orjson.dumps(_ev(id="h12", ts="yesterday")), "bad_ts"),
    ("NaN literal", b"k13", b'{"id": "h13", "features": {"x0": NaN}}', "invalid_json"),
    ("Infinity literal", b"k14", b'{"id": "h14", "features": {"x0": Infinity}}', "invalid_json"),
    ("-Infinity literal", b"k15", b'{"id": "h15", "features": {"x0": -Infinity}}', "invalid_json"),
    ("number overflowing to inf (1e999)", b"k16", b'{"id": "h16", "features": {"x0": 1e999}}', "non_finite_number"),
    ("missing id", b"k17", orjson.dumps({"features": {"x0": 1.0}, "label": True}), "missing_id"),
    ("missing features", b"k18", orjson.dumps({"id": "h18", "label": True}), "missing_features"),
    ("label of an unseen class (2)", b"k19", orjson.dumps(_ev(id="h19", label=2)), "unknown_label"),
    ("label of an unseen class ('maybe')", b"k20", orjson.dumps(_ev(id="h20", label="maybe")), "unknown_label"),
    ("1 MB value", b"k21", orjson.dumps(_ev(id="h21", features={"x0": 1.0, "pad": "x" * (1 << 20)})), "value_too_large"),
    ("deeply nested JSON (5000 levels)", b"k22", _nested(5000), "too_deep"),
    ("nested JSON within parser limits (50 levels)", b"k23", _nested(50), "bad_feature_type"),
]


def test_hostile_input_goes_to_dlq_with_reason(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "hostile")
    normal = sc.events()
    # Interleave: one hostile record every `gap` normal ones, cycling over the partitions.
    gap = max(len(normal) // (len(CORPUS) + 1), 1)
    stream: list[tuple[int, bytes | None, bytes | None]] = []
    placed: list[tuple[int, int]] = []  # (partition, index within that partition's records)
    per_part = [0] * PARTITIONS
    hostile = iter(enumerate(CORPUS))
    for i, rec in enumerate(normal):
        stream.append(rec)
        per_part[rec[0]] += 1
        if (i + 1) % gap == 0:
            nxt = next(hostile, None)
            if nxt is not None:
                k, (_name, key, value, _code) = nxt
                p = k % PARTITIONS
                stream.append((p, key, value))
                placed.append((p, per_part[p]))
                per_part[p] += 1
    assert len(placed) == len(CORPUS)
    with I4Sampler(sc) as i4:
        d = sc.start()
        sc.produce(stream, over_s=5)
        wait_for(lambda: caught_up(sc, len(stream)), 600, "all input committed")
        sc.stop(d)
    v = audit(sc)
    outcome: dict[str, str] = {}
    for (name, _key, _value, _want), (p, off) in zip(CORPUS, placed, strict=True):
        outcome[name] = v.i1.dlq_codes.get((p, off), PROCESSED)
    want_dlq = sum(1 for c in CORPUS if c[3] != PROCESSED)
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    dlq_counted = sum(int(r.hget(f"streamlearn:{sc.app}:{sc.topic}:{p}:status", "dlq") or 0) for p in range(PARTITIONS))
    recoveries = sum(int(r.hget(f"streamlearn:{sc.app}:{sc.topic}:{p}:counters", "recoveries") or 0) for p in range(PARTITIONS))
    record_result({"scenario": "hostile", "fault": "hostile input corpus", "injected": len(CORPUS), **v.row(),
                   "i4_samples": i4.samples, "i4_violations": len(i4.violations), "dlq_counted": dlq_counted,
                   "recoveries": recoveries, "cases": [{"case": c[0], "expected": c[3], "got": outcome[c[0]]} for c in CORPUS]})
    mismatch = {n: (outcome[n], w) for n, _k, _v, w in CORPUS if outcome[n] != w}
    assert not mismatch, "DLQ reason (got, expected): " + json.dumps(mismatch)
    assert_exactly_once(v, expect_dead_letters=want_dlq)
    assert dlq_counted == want_dlq, f"status counts {dlq_counted} dead letters, DLQ holds {want_dlq}"
    assert recoveries == 0 and "worker_died" not in d.log(), "a hostile record crashed a worker"
    assert not i4.violations
