"""bench.merge_rerun: a partial run's phase replaces only that phase's figures, and the page says where they came from."""

from __future__ import annotations

from bench.merge_rerun import merge
from bench.report_text import header


def test_only_the_phase_fields_are_merged_and_the_rerun_is_recorded() -> None:
    summary = {"systems": {"streamlearn_eos_1w": {"throughput_eps": 18402.0, "recovery_s": 3.92, "recovery_worst_s": 4.33}}}
    partial = {"systems": {"streamlearn_eos_1w": {"recovery_s": 2.1, "recovery_worst_s": 2.9, "first_output_after_kill_s": 1.1,
                                                  "throughput_eps": 1.0}},
               "provenance": {"git": {"commit": "abc123", "dirty": False}, "command": "python -m bench.run --runs 0"},
               "machine": {"loadavg_at_start": [0.5, 0.7, 0.9]}, "wall_s": 300.0}
    assert merge(summary, partial, "recovery", "a recovery change") == ["streamlearn_eos_1w recovery"]
    s = summary["systems"]["streamlearn_eos_1w"]
    assert s == {"throughput_eps": 18402.0, "recovery_s": 2.1, "recovery_worst_s": 2.9, "first_output_after_kill_s": 1.1}
    assert summary["reruns"][0]["commit"] == "abc123" and summary["reruns"][0]["why"] == "a recovery change"
    page = header(summary)
    assert "re-measured after the run: streamlearn_eos_1w recovery" in page and "`abc123`" in page and "a recovery change" in page
