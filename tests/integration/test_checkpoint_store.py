"""Redis checkpoint store: the compare-and-set that keeps zombies out (I3) and offsets monotonic (I4)."""

from __future__ import annotations

import uuid

from pydantic import SecretStr

from connectors.redis_store import (
    CAS_OFFSET_BACKWARDS,
    CAS_STALE_EPOCH,
    CheckpointStore,
    open_store,
    redacted,
)
from streamlearn.config import RedisConfig


def store(redis_url: str) -> CheckpointStore:
    return open_store(RedisConfig(url=SecretStr(redis_url), key_prefix="sltest"), f"store-{uuid.uuid4().hex[:8]}", "topic")


def test_stale_epoch_cannot_overwrite(redis_url: str) -> None:
    s = store(redis_url)
    old = s.next_epoch(0)
    assert s.write_checkpoint(0, old, 10, b"old-owner").ok
    new = s.next_epoch(0)  # a new owner takes over
    res = s.write_checkpoint(0, old, 20, b"zombie")
    assert not res.ok and res.code == CAS_STALE_EPOCH and res.current == new
    stored = s.read_checkpoint(0)
    assert stored is not None and (stored.blob, stored.offset, stored.epoch) == (b"old-owner", 10, old)
    assert s.write_checkpoint(0, new, 20, b"new-owner").ok


def test_offset_never_moves_backwards_and_previous_is_kept(redis_url: str) -> None:
    s = store(redis_url)
    e = s.next_epoch(3)
    assert s.write_checkpoint(3, e, 100, b"a").ok
    assert s.write_checkpoint(3, e, 200, b"b").ok
    res = s.write_checkpoint(3, e, 150, b"c")
    assert not res.ok and res.code == CAS_OFFSET_BACKWARDS and res.current == 200
    cur, prev = s.read_checkpoint(3), s.read_previous_checkpoint(3)
    assert cur is not None and prev is not None
    assert (cur.offset, cur.blob, prev.offset, prev.blob) == (200, b"b", 100, b"a")
    assert s.checkpoint_meta(3)["size"] == 1


def test_alo_offsets_and_leases_are_epoch_checked(redis_url: str) -> None:
    s = store(redis_url)
    e1 = s.next_epoch(1)
    assert s.commit_offset(1, e1, 5).ok
    assert s.renew_lease(1, e1, "w0", 10_000).ok
    assert s.lease(1)[0] == "w0"
    e2 = s.next_epoch(1)
    assert not s.commit_offset(1, e1, 9).ok
    assert not s.renew_lease(1, e1, "w0", 10_000).ok
    assert s.commit_offset(1, e2, 9).ok and s.committed_offset(1) == 9
    assert s.renew_lease(1, e2, "w0", 10_000).ok
    s.release_lease(1, e2, "someone-else")
    assert s.lease(1)[0] == "w0"
    s.release_lease(1, e2, "w0")
    assert s.lease(1) == (None, 0)


def test_retake_is_refused_once_another_owner_took_the_partition(redis_url: str) -> None:
    """Finding 6: check-then-INCR let a woken zombie bump the epoch past the new owner's."""
    s = store(redis_url)
    zombie = s.take_epoch(0, "z@h:1", 10_000)
    assert zombie.ok and zombie.current == 1 and s.lease(0)[0] == "z@h:1"
    new = s.take_epoch(0, "n@h:2", 10_000)  # assigned: unconditional, fences the zombie
    assert new.ok and new.current == 2
    late = s.take_epoch(0, "z@h:1", 10_000, expected=zombie.current)  # the zombie's re-take after its check
    assert not late.ok and late.code == CAS_STALE_EPOCH and late.current == 2
    assert s.current_epoch(0) == 2 and s.lease(0)[0] == "n@h:2"
    again = s.take_epoch(0, "n@h:2", 10_000, expected=2)  # the owner's own re-take
    assert again.ok and again.current == 3
    # A retry whose first attempt ran but lost its reply: the take was its own.
    assert s.take_epoch(0, "n@h:2", 10_000, expected=2).current == 3


def test_a_zombie_can_neither_publish_status_nor_release_the_new_owners_lease(redis_url: str) -> None:
    """Finding 10: status and lease release are epoch-checked like checkpoints."""
    s = store(redis_url)
    old = s.take_epoch(2, "w0@h:1", 10_000).current
    assert s.publish_status(2, old, {"owner": "w0@h:1", "phase": "running", "events": 5}).ok
    new = s.take_epoch(2, "w0@h:1", 10_000).current  # same worker name, restarted: a new epoch
    assert s.publish_status(2, new, {"owner": "w0@h:1", "phase": "replaying", "events": 5}).ok
    res = s.publish_status(2, old, {"phase": "stopped", "events": 9})
    assert not res.ok and res.code == CAS_STALE_EPOCH and res.current == new
    assert s.read_status(2)["phase"] == "replaying" and s.read_status(2)["events"] == "5"
    assert not s.release_lease(2, old, "w0@h:1").ok
    assert s.lease(2)[0] == "w0@h:1"
    assert s.release_lease(2, new, "w0@h:1").ok and s.lease(2) == (None, 0)


def test_the_first_start_position_is_kept(redis_url: str) -> None:
    s = store(redis_url)
    e1 = s.take_epoch(1, "a", 10_000).current
    assert s.start_offset(1) is None
    assert s.record_start(1, e1, 40).current == 40
    e2 = s.take_epoch(1, "b", 10_000).current
    assert s.record_start(1, e2, 75).current == 40  # a later owner reads the decision, never re-decides
    assert not s.record_start(1, e1, 99).ok and s.start_offset(1) == 40


def test_redacted_urls_hide_passwords() -> None:
    assert redacted("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert redacted("rediss://user:pw@h:1/0") == "rediss://user:***@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"
