"""The checkpoint-overhead measurement's pure logic: which arms run in which order, and the paired ratios."""

from __future__ import annotations

from typing import Any

import pytest

from bench import ckpt_overhead
from bench import plan as plan_mod
from bench.ckpt_overhead import ARMS, paired, run_arms, schedule
from bench.plan import Plan, estimate_s


def test_arms_differ_from_never_only_in_what_their_label_says() -> None:
    never = ARMS["never"]
    diff = {arm: {k for k in ARMS[arm] if ARMS[arm][k] != never[k]} for arm in ARMS}
    assert diff["every_1s"] == {"checkpoint_every_s"}
    assert diff["every_1s_publish"] == {"checkpoint_every_s", "publish_every_s"}
    assert diff["every_1s_inline"] == {"checkpoint_every_s", "checkpoint_background"}
    # Publishing is set explicitly everywhere: its default (10 s) makes checkpoints due on its own.
    assert all("publish_every_s" in a for a in ARMS.values()) and never["publish_every_s"] == 0.0


def test_schedule_runs_every_arm_once_per_round_and_reverses_the_order_every_other_round() -> None:
    order = schedule(4, 1)
    assert order == [(0, "never"), (0, "every_1s"), (0, "every_1s_publish"), (0, "every_1s_inline"),
                     (1, "every_1s"), (1, "never"),
                     (2, "never"), (2, "every_1s"),
                     (3, "every_1s"), (3, "never")]
    # Over an even number of rounds each target arm runs first as often as the other.
    firsts = [next(a for r, a in order if r == k) for k in range(4)]
    assert firsts.count("never") == firsts.count("every_1s") == 2


def test_paired_ratios_are_per_round_and_skip_a_round_missing_either_arm() -> None:
    runs = {"never": {0: 8000.0, 1: 6000.0, 2: 9000.0, 3: 7000.0},
            "every_1s": {0: 7600.0, 1: 5880.0, 2: 8550.0},  # round 3 did not complete
            "every_1s_inline": {1: 5400.0, 4: 1.0}}  # round 4 has no never run
    p = paired(runs)
    one = p["every_1s"]
    assert one["rounds"] == [0, 1, 2] and one["ratios"] == [0.95, 0.98, 0.95] and one["n"] == 3
    assert one["median_ratio"] == 0.95 and one["min_ratio"] == 0.95 and one["max_ratio"] == 0.98
    assert one["overhead_pct_median"] == 5.0 and one["overhead_pct_low"] == 2.0 and one["overhead_pct_high"] == 5.0
    assert one["confidence_of_range"] == 0.75  # 1 - 2^(1-3): the median ratio lies in [min, max]
    inl = p["every_1s_inline"]
    assert inl["rounds"] == [1] and inl["ratios"] == [0.9] and inl["confidence_of_range"] is None
    assert "never" not in p


def test_paired_ratio_differs_from_the_ratio_of_medians_when_rounds_differ() -> None:
    # A slow round slows both arms: pairing cancels it, a ratio of medians does not.
    runs = {"never": {0: 10000.0, 1: 5000.0, 2: 9000.0}, "every_1s": {0: 9900.0, 1: 4950.0, 2: 6000.0}}
    p = paired(runs)["every_1s"]
    assert p["median_ratio"] == 0.99
    assert 1 - 6000.0 / 9000.0 > 0.3  # the medians alone would say a third


def test_paired_with_nothing_to_pair_gives_none() -> None:
    p = paired({"never": {}, "every_1s": {0: 1.0}})["every_1s"]
    assert p["n"] == 0 and p["median_ratio"] is None and p["overhead_pct_median"] is None


def test_run_arms_keeps_the_old_fields_and_adds_the_paired_ones() -> None:
    calls: list[tuple[str, int]] = []
    eps = {"never": 8000.0, "every_1s": 7800.0, "every_1s_publish": 7000.0, "every_1s_inline": 7200.0}

    def measure(arm: str, r: int, settings: dict[str, Any]) -> dict[str, float | None] | None:
        calls.append((arm, r))
        assert settings == ARMS[arm]
        if (arm, r) == ("every_1s", 2):
            return None
        cpu = 0.1 if arm == "never" else 0.11  # per 1k events: the arm's forks and writes cost CPU
        return {"throughput_eps": eps[arm] * (1.0 - 0.1 * r), "cpu_s_per_1k_events": cpu + 0.01 * r,
                "services_cpu_s_per_1k_events": None}

    ck = run_arms(measure, 3, 2)
    assert [(r, a) for a, r in calls] == schedule(3, 2)
    assert ck["runs"]["every_1s"] == [7800, 7020] and ck["runs"]["every_1s_publish"] == [7000, 6300]
    assert ck["never"] == 7200.0 and ck["overhead_pct"] == pytest.approx(100 * (1 - 7410.0 / 7200.0))
    assert ck["paired"]["every_1s"]["ratios"] == [0.975, 0.975]
    assert ck["paired"]["every_1s_publish"]["overhead_pct_median"] == 12.5
    assert ck["overhead_publish_pct"] == pytest.approx(100 * (1 - 6650.0 / 7200.0))
    assert ck["order"][:4] == ["never#0", "every_1s#0", "every_1s_publish#0", "every_1s_inline#0"]
    assert ck["arms"]["never"]["publish_every_s"] == 0.0 and ck["arms"]["never"]["description"]
    cpu = ck["paired_cpu"]["cpu_s_per_1k_events"]["every_1s"]
    assert cpu["ratios"] == [1.1, 1.0909] and cpu["overhead_pct_median"] == pytest.approx(9.55)  # more CPU: positive
    assert cpu["overhead_pct_low"] == 9.09 and cpu["overhead_pct_high"] == 10.0
    assert ck["paired_cpu"]["services_cpu_s_per_1k_events"]["every_1s"]["n"] == 0


def test_the_estimate_counts_the_checkpoint_runs() -> None:
    plan = Plan.full(["streamlearn_eos_1w"])
    plan.ckpt_only, plan.systems, plan.rates, plan.serving_s = True, [], [], 0.0
    base = estimate_s(plan, {})["variants"]
    plan.ckpt_rounds += 1
    more = estimate_s(plan, {})["variants"]
    one = plan_mod.STARTUP_S["streamlearn"] + plan_mod.STOP_S["streamlearn"] + plan_mod.TOPIC_S + plan.ckpt_n / plan_mod.HOEFFDING_EPS
    assert more - base == pytest.approx(2 * one, abs=1)  # one more round: one never and one 1 s run
    plan.ckpt_side_rounds = 0
    assert estimate_s(plan, {})["variants"] < more
    assert set(ckpt_overhead.OVERHEAD_FIELD) == set(ARMS) - {"never"}


def _raw(arm: str, r: int, eps: float, publish_s: float) -> dict[str, Any]:
    a = ARMS[arm]
    return {"label": f"ckpt_{arm}", "kind": "throughput", "run": r, "complete": True, "throughput_eps": eps, "_file": f"ckpt_{arm}-{r}.json",
            "settings": {"processing": {"checkpoint_every_s": a["checkpoint_every_s"], "checkpoint_every_events": 0,
                                        "commit_interval_ms": 100, "max_batch": 5000},
                         "checkpoint": {"background": a["checkpoint_background"]}, "model.publish": {"every_s": publish_s}},
            "versions_reserved_per_partition": [1, 1, 1, 1] if publish_s else [0, 0, 0, 0],
            "resources": {"cpu_s_per_1k_events": round(0.1 * 8000.0 / eps, 4), "services_cpu_s_per_1k_events": 0.05}}


def _page(factor: dict[str, list[float]]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A summary + raw files as bench.run writes them, never at 8,000 ev/s, each arm at never × factor[arm][round]."""
    from bench import report

    raws: list[dict[str, Any]] = []

    def measure(arm: str, r: int, settings: dict[str, Any]) -> dict[str, float | None] | None:
        eps = 8000.0 if arm == "never" else 8000.0 * factor[arm][r]
        raws.append(_raw(arm, r, eps, settings["publish_every_s"]))
        return {"throughput_eps": eps, "cpu_s_per_1k_events": 0.1 / (eps / 8000.0), "services_cpu_s_per_1k_events": 0.05}

    summary = {"config": {}, "systems": {}, "machine": {"cpu_count": 2},
               "variants": {"checkpoint_hoeffding": run_arms(measure, len(factor["every_1s"]), len(factor["every_1s_publish"]))}}
    return report.render(summary, raws), summary, raws


def _target(page: str) -> str:
    return next(line for line in page.splitlines() if line.startswith("| checkpoint overhead"))


def test_the_page_states_the_arms_settings_and_the_paired_ratios_all_from_the_data() -> None:
    from bench import report
    from tests.unit.test_bench_doc import data_values, doc_numbers, matches

    page, summary, raws = _page({"every_1s": [0.97, 0.98, 1.01, 0.99, 0.985], "every_1s_publish": [0.9, 0.92],
                                 "every_1s_inline": [0.95, 0.96]})
    sec = page[page.index("## Checkpoint overhead"):page.index("## Targets")]
    assert "model.publish.every_s: 0.0" in sec and "model.publish.every_s: 10.0" in sec
    assert "| `every_1s` |" in sec and "0: 0.970, 1: 0.980, 2: 1.010, 3: 0.990, 4: 0.985" in sec
    assert "| 0.985 | 1.5 % (-1.0 to 3.0 %) | 0.938 |" in sec  # 5 rounds: 1 - 2^-4
    assert "`never#0 every_1s#0 every_1s_publish#0 every_1s_inline#0 every_1s_inline#1 every_1s_publish#1 every_1s#1 never#1" in sec
    assert _target(page).endswith("| met |") and "1.5 % (-1.0 to 3.0 %), median of 5 per-round ratios" in _target(page)
    # CPU per event from the raw files' resources: 0.1 s per 1k events at 8,000 ev/s, proportionally more when slower.
    assert "| `every_1s` | 0: 0.1031, 1: 0.1020, 2: 0.0990, 3: 0.1010, 4: 0.1015 | 1.5 % (-1.0 to 3.1 %) | " in sec
    data = data_values([summary, raws, report.derived(summary, raws)], set())
    assert [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)] == []


def test_the_verdict_needs_the_whole_range_on_one_side_of_5_percent() -> None:
    side = {"every_1s_publish": [0.9], "every_1s_inline": [0.9]}
    assert _target(_page({"every_1s": [0.93, 0.94, 0.92], **side})[0]).endswith("| **not met** |")
    assert _target(_page({"every_1s": [0.93, 0.97, 0.96], **side})[0]).endswith("| undecided: the range spans 5 % |")
    assert _target(_page({"every_1s": [0.99, 0.99], **side})[0]).endswith("| undecided: fewer than 3 rounds |")


def test_an_old_summary_renders_without_the_section() -> None:
    from bench import report

    summary = {"config": {}, "systems": {}, "machine": {"cpu_count": 2},
               "variants": {"checkpoint_hoeffding": {"never": 8000.0, "every_1s": 7900.0, "overhead_pct": 1.25}}}
    page = report.render(summary, [])
    assert "## Checkpoint overhead" not in page and "never / every 1 s (forked child)" in page
