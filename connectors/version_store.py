"""Published model versions in Redis: opaque blobs with a metadata dict, a served pointer, a push channel.

Knows nothing about models (like `redis_store`): a version is bytes plus a
JSON-able dict. Per partition it keeps

- `{p}:version:{v}`: hash {meta, blob};
- `{p}:versions`: sorted set of the versions kept (score = version);
- `{p}:version_seq`: the last version number handed out;
- `{p}:served`: hash {version, mode}; mode `latest` follows every publish,
  `rollback` and `pinned` hold serving on their version until `unpin`.

Every change of what is served is announced on one pub/sub channel per app
and topic (`{prefix}:{app}:{topic}:models`), so serving learns of it at once
instead of polling; a subscriber that missed messages re-reads the pointers.

A publish is one Lua script that first checks the writer's epoch, like a
checkpoint (a fenced zombie's publish never lands), then stores the version,
moves the pointer if it follows `latest`, trims to `keep` versions (never
the served one) and announces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from connectors.redis_store import CAS_STALE_EPOCH, CheckpointStore

__all__ = ["CAS_STALE_EPOCH", "MODES", "PublishResult", "Served", "VersionStore"]

MODES = ("latest", "rollback", "pinned")

# KEYS: epoch, versions, served, version key   ARGV: epoch, version, meta, blob, keep, channel, vkey prefix, partition
_PUBLISH = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
local v = ARGV[2]
redis.call('HSET', KEYS[4], 'meta', ARGV[3], 'blob', ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(v), v)
local mode = redis.call('HGET', KEYS[3], 'mode')
if (not mode) or mode == 'latest' then
  redis.call('HSET', KEYS[3], 'version', v, 'mode', 'latest')
end
local served = redis.call('HGET', KEYS[3], 'version')
local all = redis.call('ZRANGE', KEYS[2], 0, -1)
local extra = #all - tonumber(ARGV[5])
for i = 1, #all do
  if extra <= 0 then break end
  if all[i] ~= served then
    redis.call('DEL', ARGV[7] .. all[i])
    redis.call('ZREM', KEYS[2], all[i])
    extra = extra - 1
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[8] .. ':' .. v .. ':publish')
return {1, tonumber(v)}
"""


# KEYS: versions, served   ARGV: version | newest | served | before_served, mode, channel, partition
_SET_SERVED = """
local want = ARGV[1]
local v = nil
if want == 'newest' then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1)
  v = last[1]
  if not v then
    if ARGV[2] == 'latest' then
      redis.call('HSET', KEYS[2], 'mode', 'latest')
      redis.call('PUBLISH', ARGV[3], ARGV[4] .. '::latest')
    end
    return {0, -1}
  end
elseif want == 'served' or want == 'before_served' then
  local cur = redis.call('HGET', KEYS[2], 'version')
  if not cur then return {0, -1} end
  v = cur
  if want == 'before_served' then
    local older = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. cur, '-inf', 'LIMIT', 0, 1)
    v = older[1]
    if not v then return {0, -1} end
  end
else
  v = want
end
if not redis.call('ZSCORE', KEYS[1], v) then return {0, -1} end
redis.call('HSET', KEYS[2], 'version', v, 'mode', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ':' .. v .. ':' .. ARGV[2])
return {1, tonumber(v)}
"""


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    code: int
    value: int  # the version published, or the current epoch when refused as stale


@dataclass(frozen=True)
class Served:
    version: int | None
    mode: str  # latest | rollback | pinned


class VersionStore:
    """One app's published versions, next to its checkpoints (same client, same key scheme)."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.r: redis.Redis = store.r
        self.channel = store.key(0, "x").rsplit(":", 2)[0] + ":models"
        self._publish = self.r.register_script(_PUBLISH)
        self._set_served = self.r.register_script(_SET_SERVED)

    def _k(self, partition: int, kind: str) -> str:
        return self.store.key(partition, kind)

    def reserve(self, partition: int) -> int:
        """The next version number of the partition (a refused write leaves a gap, never a reuse)."""
        return int(self.r.incr(self._k(partition, "version_seq")))

    def publish(self, partition: int, epoch: int, version: int, meta: dict[str, Any], blob: bytes, keep: int) -> PublishResult:
        vkey_prefix = self._k(partition, "version:")
        code, val = self._publish(
            keys=[self._k(partition, "epoch"), self._k(partition, "versions"), self._k(partition, "served"), vkey_prefix + str(version)],
            args=[epoch, version, json.dumps(meta, sort_keys=True), blob, keep, self.channel, vkey_prefix, partition],
        )
        return PublishResult(int(code) == 1, int(code), int(val))

    def versions(self, partition: int) -> list[int]:
        return [int(v) for v in self.r.zrange(self._k(partition, "versions"), 0, -1)]

    def meta(self, partition: int, version: int) -> dict[str, Any] | None:
        raw = self.r.hget(self._k(partition, f"version:{version}"), "meta")
        return json.loads(raw) if raw is not None else None

    def read(self, partition: int, version: int) -> tuple[dict[str, Any], bytes] | None:
        meta, blob = self.r.hmget(self._k(partition, f"version:{version}"), ["meta", "blob"])
        if meta is None or blob is None:
            return None
        return json.loads(meta), bytes(blob)

    def served(self, partition: int) -> Served:
        version, mode = self.r.hmget(self._k(partition, "served"), ["version", "mode"])
        return Served(int(version) if version is not None else None, mode.decode() if mode is not None else "latest")

    def set_served(self, partition: int, version: int | str, mode: str) -> int | None:
        """Point serving at `version` and announce it, in one script so publishing can't trim it in between.

        `version` is a number, or `newest` (the newest kept), `served` (the
        one served now) or `before_served` (the newest kept older than it).
        Returns the version now served, or None if there is no such kept
        version (nothing changed). `latest` with nothing kept yet only sets
        the mode, and returns None.
        """
        assert mode in MODES
        code, val = self._set_served(keys=[self._k(partition, "versions"), self._k(partition, "served")],
                                     args=[str(version), mode, self.channel, partition])
        return int(val) if int(code) == 1 else None
