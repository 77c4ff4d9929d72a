"""What serving points at changes in one Redis script: a publish can never trim the version being pinned or rolled back to.

Real Redis. The interleaving that failed on a loaded CI machine: a caller
read the served version V, the learner published and trimmed V, then the
caller pinned V (a pointer to a deleted version). Now the check and the
pointer move are one script, and asking for a version that is gone changes
nothing.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import redis

from connectors.redis_store import CheckpointStore
from connectors.version_store import VersionStore
from tests.integration.engine_helpers import REPO, write_config
from tests.integration.engine_helpers import load as load_cfg
from tests.integration.serving_helpers import versions_of


def _store(redis_url: str) -> VersionStore:
    return VersionStore(CheckpointStore(redis.Redis.from_url(redis_url), "sltest", f"vs-{uuid.uuid4().hex[:8]}", "topic"))


def _publish(vs: VersionStore, p: int, epoch: int, keep: int = 3) -> int:
    v = vs.reserve(p)
    assert vs.publish(p, epoch, v, {"version": v}, b"blob-%d" % v, keep).ok
    return v


def test_pin_served_holds_that_version_through_later_publishes(redis_url: str) -> None:
    vs = _store(redis_url)
    epoch = vs.store.next_epoch(0)
    assert vs.set_served(0, "served", "pinned") is None  # nothing published: nothing pinned, nothing changed
    assert vs.set_served(0, "newest", "latest") is None and vs.served(0).mode == "latest"
    first = [_publish(vs, 0, epoch) for _ in range(3)]
    assert vs.served(0).version == first[-1]
    assert vs.set_served(0, "served", "pinned") == first[-1]
    later = [_publish(vs, 0, epoch) for _ in range(5)]
    assert vs.served(0).version == first[-1] and vs.served(0).mode == "pinned"
    assert first[-1] in vs.versions(0) and vs.read(0, first[-1]) is not None  # the served one is never trimmed
    assert vs.versions(0) == [first[-1], *later[-2:]]
    assert vs.set_served(0, "newest", "latest") == later[-1]


def test_a_trimmed_version_is_refused_and_nothing_changes(redis_url: str) -> None:
    vs = _store(redis_url)
    epoch = vs.store.next_epoch(1)
    published = [_publish(vs, 1, epoch) for _ in range(6)]  # keep 3: the first three are trimmed
    gone = published[0]
    assert gone not in vs.versions(1)
    for mode in ("pinned", "rollback"):
        assert vs.set_served(1, gone, mode) is None
        assert vs.served(1).version == published[-1] and vs.served(1).mode == "latest"


def test_rollback_before_served_picks_the_newest_older_kept_version(redis_url: str) -> None:
    vs = _store(redis_url)
    epoch = vs.store.next_epoch(2)
    published = [_publish(vs, 2, epoch) for _ in range(3)]
    assert vs.set_served(2, "before_served", "rollback") == published[1]
    assert vs.set_served(2, "before_served", "rollback") == published[0]
    assert vs.set_served(2, "before_served", "rollback") is None  # nothing older is kept: still on the oldest
    assert vs.served(2).version == published[0] and vs.served(2).mode == "rollback"


def test_pin_and_rollback_of_a_named_partition_work_while_kafka_is_unreachable(tmp_path: Path, redis_url: str,
                                                                               services_env: dict[str, str]) -> None:
    """What is served lives in Redis: an operator rolling back during a broker incident must not need the broker.

    (The landing CI once saw the shared broker not answer a metadata request for 10 s mid-test, and `models pin` failed.)
    """
    path = write_config(tmp_path, "127.0.0.1:1", redis_url, "t-no-broker")  # nothing listens on port 1
    vs = versions_of(load_cfg(path))
    epoch = vs.store.next_epoch(0)
    published = [_publish(vs, 0, epoch, keep=5) for _ in range(3)]

    env = {**services_env, "STREAMLEARN_KAFKA__BOOTSTRAP": "127.0.0.1:1", "KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # not the session's

    def models(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streamlearn", "models", *args, "-c", str(path)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    pin = models("pin", "--partition", "0")
    assert pin.returncode == 0 and f"pinned on version {published[-1]}" in pin.stdout, pin.stdout + pin.stderr
    back = models("rollback", "--partition", "0")
    assert back.returncode == 0 and f"serving version {published[-2]}" in back.stdout, back.stdout + back.stderr
    assert vs.served(0).version == published[-2] and vs.served(0).mode == "rollback"
    # Every partition (no --partition) needs the topic's partition list: a clear error naming Kafka, not a trace.
    every = models("unpin")
    assert every.returncode != 0 and "Kafka" in every.stderr and "Traceback" not in every.stderr, every.stderr
