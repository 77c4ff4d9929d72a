"""The README cannot rot: its claims are checked here (fast) and its shell blocks run in
tests/integration/test_readme_blocks.py against real Kafka and Redis."""

from __future__ import annotations

import json
import re

import yaml

from streamlearn.config import AppConfig, load_config
from streamlearn.ops import metrics
from tests.readme_blocks import README, blocks, cluster_recipe, runnable

ROOT = README.parent


def test_every_shell_block_is_run_or_says_why_not() -> None:
    shell = [b for b in blocks() if b.lang in ("bash", "sh", "shell", "console")]
    assert shell
    for b in shell:
        assert b.marker == "run" or (b.marker or "").startswith(("skip (", "cluster (")), \
            f"README.md:{b.line}: mark the block run, skip (reason) or cluster (the test that runs it)"
    assert len(runnable()) >= 3
    assert "ray start --head" in cluster_recipe().body  # the one block tests/chaos/test_readme_cluster.py runs


def test_quick_start_is_exactly_make_demo_then_make_test() -> None:
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    cmds = [b.body.strip() for b in blocks(quick) if b.lang == "bash"]
    assert cmds == ["make demo", "make test"]
    assert "docs/img/demo-prequential.png" in quick and (ROOT / "docs/img/demo-prequential.png").stat().st_size > 10_000


def test_metrics_table_matches_the_exported_series() -> None:
    text = README.read_text()
    table = re.search(r"<!-- metrics-table:start[^>]*-->\n(.*?)<!-- metrics-table:end -->", text, re.S)
    assert table is not None
    assert table.group(1).strip() == metrics.metrics_markdown().strip(), "paste streamlearn.ops.metrics.metrics_markdown() into the README"


# Written under other issues (reliability report, benchmark report); linked ahead of time.
LINKED_AHEAD = {"docs/reliability.md", "docs/benchmarks.md"}


def test_local_links_point_at_files() -> None:
    text = README.read_text()
    targets = set(re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", text))
    assert len(targets) > 5
    missing = {t for t in targets if not (ROOT / t).exists()}
    assert missing <= LINKED_AHEAD, missing - LINKED_AHEAD


def test_walkthrough_files_load_and_match_the_text() -> None:
    cfg = load_config(ROOT / "examples/app.yaml", environ={})
    text = README.read_text()
    for name in (cfg.kafka.input_topic,):
        assert name in text
    lines = (ROOT / "examples/events.jsonl").read_bytes().splitlines()
    good = []
    for raw in lines:
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(doc.get("features"), dict):
            good.append(doc)
    assert len(lines) == 1002 and len(good) == 1000  # "1,000 labelled events and 2 malformed records"
    assert all("label" in d for d in good)


def test_json_and_yaml_examples_are_valid() -> None:
    for b in blocks():
        if b.lang == "json":
            doc = json.loads(b.body)
            assert "id" in doc
        if b.lang == "yaml":
            data = yaml.safe_load(b.body)
            AppConfig.model_validate(data)  # section and key names as the config model has them


def test_every_env_override_named_in_the_readme_exists() -> None:
    text = README.read_text()
    for var in set(re.findall(r"STREAMLEARN_([A-Z]+)__([A-Z_]+)", text)):
        section, key = var[0].lower(), var[1].lower()
        model = AppConfig.model_fields[section].annotation
        assert model is not None and key in model.model_fields, var  # type: ignore[attr-defined]
