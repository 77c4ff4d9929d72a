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
    s.release_lease(1, "someone-else")
    assert s.lease(1)[0] == "w0"
    s.release_lease(1, "w0")
    assert s.lease(1) == (None, 0)


def test_redacted_urls_hide_passwords() -> None:
    assert redacted("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert redacted("rediss://user:pw@h:1/0") == "rediss://user:***@h:1/0"
    assert redacted("redis://h:1/0") == "redis://h:1/0"
