"""Fault-free run: the checker itself must find nothing to complain about."""

from __future__ import annotations

from tests.chaos.checker import I4Sampler, assert_exactly_once, audit, caught_up
from tests.chaos.harness import ChaosEnv, Scenario, record_result, wait_for


def test_fault_free_run_is_exactly_once(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "baseline")
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        sc.produce(recs)
        wait_for(lambda: caught_up(sc, len(recs)), 300, "all input committed")
        sc.stop(d)
    v = audit(sc)
    record_result({"scenario": "baseline", "fault": "none", "injected": 0, **v.row(), "i4_samples": i4.samples, "i4_violations": len(i4.violations)})
    assert_exactly_once(v)
    assert i4.samples > 0 and not i4.violations, i4.violations[:5]
