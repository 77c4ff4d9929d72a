"""A partition added to the input topic while `streamlearn run` runs is owned and predicted, exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient, NewPartitions

from connectors.kafka_io import make_producer
from connectors.kafka_records import Record, produce_records
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh


def test_partition_added_while_running_is_picked_up(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    """A 2-partition topic grows to 3 under `streamlearn run` (one worker, one standby)."""
    topic = unique_topic(partitions=2)
    cfg_path = eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1})
    cfg = eh.load(cfg_path)
    eh.produce(cfg, eh.keyed(synthetic_events(200, seed=5)))
    proc = eh.start_run(cfg_path, services_env)
    try:
        eh.wait_for(lambda: eh.all_committed(cfg) and len(eh.outputs(cfg)) == 200, 240, "the first 200 events predicted", proc)
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept alive until the future resolves
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
        extra = list(synthetic_events(300, seed=6))[200:]
        produce_records(make_producer(kafka_bootstrap), topic,
                        [Record(str(ev["id"]).encode(), orjson.dumps(ev), 2) for ev in extra])
        # Picked up within PARTITIONS_CHECK_S plus a worker's start: the deadline only stops a hung test.
        eh.wait_for(lambda: sum(1 for o in eh.outputs(cfg) if o["partition"] == 2) == 100, 180, "predictions for the new partition 2", proc)
    finally:
        rc, out = eh.stop_run(proc)
    assert rc == 0, out[-3000:]
    got = eh.outputs(cfg)
    keys = [(o["partition"], o["offset"]) for o in got]
    assert len(keys) == 300 and len(set(keys)) == 300  # one prediction per input offset
    assert sorted(o["offset"] for o in got if o["partition"] == 2) == list(range(100))
