"""Redis checkpoint store: epochs, fenced checkpoints, leases, status.

Knows nothing about models: a checkpoint is an opaque blob plus the input
offset it reflects and the epoch of the owner that wrote it. Every write
that could come from a zombie (checkpoint, offset, lease renewal and
release, status, and a re-take of the epoch itself) is a Lua script that
first compares the caller's epoch with the current one, so a fenced worker
can never overwrite what the new owner wrote (I3), and a checkpoint offset
can never move backwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis

# KEYS: epoch, ckpt, prev   ARGV: epoch, offset, blob, ts_ms
_CAS_CHECKPOINT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
local old = redis.call('HGET', KEYS[2], 'offset')
if old then
  old = tonumber(old)
  if tonumber(ARGV[2]) < old then return {-2, old} end
  if tonumber(ARGV[2]) > old then redis.call('COPY', KEYS[2], KEYS[3], 'REPLACE') end
end
redis.call('HSET', KEYS[2], 'offset', ARGV[2], 'epoch', ARGV[1], 'blob', ARGV[3], 'ts_ms', ARGV[4], 'size', string.len(ARGV[3]))
return {1, 0}
"""

# KEYS: epoch, offset   ARGV: epoch, offset   (at_least_once committed offsets)
_CAS_OFFSET = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
local old = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) < old then return {-2, old} end
redis.call('SET', KEYS[2], ARGV[2])
return {1, 0}
"""

# KEYS: epoch, lease   ARGV: epoch, owner, px
_RENEW_LEASE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1, 0}
"""

# KEYS: epoch, lease   ARGV: expected epoch ('' = any), owner, px
# Take-over in one step: a check-then-INCR in two round trips let a woken zombie
# pass the check, lose the CPU, then bump the epoch past the rightful new owner.
# A retry whose first attempt ran but lost its reply finds epoch expected+1 under its own
# lease: that take was its own, so it succeeds again instead of reporting a stale epoch.
_TAKE_EPOCH = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= cur then
  if cur == tonumber(ARGV[1]) + 1 and redis.call('GET', KEYS[2]) == ARGV[2] then return {1, cur} end
  return {-1, cur}
end
local new = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1, new}
"""

# KEYS: epoch, lease   ARGV: epoch, owner
_RELEASE_LEASE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return {1, 0}
"""

# KEYS: epoch, status   ARGV: epoch, field1, value1, field2, value2, ...
_PUBLISH_STATUS = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return {1, 0}
"""

# KEYS: epoch, start   ARGV: epoch, offset
# The first owner's decision on where a new partition starts (processing.start_from) is kept:
# later owners read it instead of deciding again ("latest" would have moved on).
_RECORD_START = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= cur then return {-1, cur} end
local old = redis.call('GET', KEYS[2])
if old then return {1, tonumber(old)} end
redis.call('SET', KEYS[2], ARGV[2])
return {1, tonumber(ARGV[2])}
"""

CAS_OK = 1
CAS_STALE_EPOCH = -1
CAS_OFFSET_BACKWARDS = -2


@dataclass(frozen=True)
class StoredCheckpoint:
    offset: int
    epoch: int
    blob: bytes
    ts_ms: int


@dataclass(frozen=True)
class CasResult:
    ok: bool
    code: int
    current: int  # current epoch (stale epoch) or current offset (backwards)


def connect(url: str, *, socket_timeout_s: float = 5.0, ssl_ca_certs: str | None = None) -> redis.Redis:
    kwargs: dict[str, Any] = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": socket_timeout_s}
    if ssl_ca_certs and url.startswith("rediss://"):
        kwargs["ssl_ca_certs"] = ssl_ca_certs
    return redis.Redis.from_url(url, **kwargs)


class SecretText(Protocol):
    """A value that shows itself only when asked (pydantic's SecretStr)."""

    def get_secret_value(self) -> str: ...


class RedisSection(Protocol):
    """The redis settings a store needs; streamlearn's `RedisConfig` is one.

    A Protocol, not the config class: connectors/ must not import the engine.
    """

    @property
    def url(self) -> SecretText: ...

    @property
    def key_prefix(self) -> str: ...

    @property
    def ssl_ca_certs(self) -> str | None: ...

    @property
    def socket_timeout_s(self) -> float: ...


def client_for(section: RedisSection) -> redis.Redis:
    """A client with every connection setting of the section (TLS CA, timeouts): the one way to connect."""
    return connect(section.url.get_secret_value(), socket_timeout_s=section.socket_timeout_s, ssl_ca_certs=section.ssl_ca_certs)


def open_store(section: RedisSection, app: str, topic: str) -> CheckpointStore:
    """The one CheckpointStore factory, so `status`, metrics and tests reach Redis exactly as `run` does."""
    return CheckpointStore(client_for(section), section.key_prefix, app, topic)


def redacted(url: str) -> str:
    """The URL without its password, for messages and status."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user + ':***' if user else '***'}@{host}"


class CheckpointStore:
    """One app's keys in Redis, scoped by input topic and partition."""

    def __init__(self, client: redis.Redis, prefix: str, app: str, topic: str) -> None:
        self.r = client
        self._base = f"{prefix}:{app}:{topic}"
        self._cas_ckpt = client.register_script(_CAS_CHECKPOINT)
        self._cas_offset = client.register_script(_CAS_OFFSET)
        self._renew = client.register_script(_RENEW_LEASE)
        self._take = client.register_script(_TAKE_EPOCH)
        self._release = client.register_script(_RELEASE_LEASE)
        self._status = client.register_script(_PUBLISH_STATUS)
        self._start = client.register_script(_RECORD_START)

    def key(self, partition: int, kind: str) -> str:
        return f"{self._base}:{partition}:{kind}"

    # --- ownership -------------------------------------------------------
    def next_epoch(self, partition: int) -> int:
        return int(self.r.incr(self.key(partition, "epoch")))

    def take_epoch(self, partition: int, owner: str, lease_ms: int, *, expected: int | None = None) -> CasResult:
        """Bump the epoch and set the lease in one step; `current` is the new epoch when ok.

        `expected=None`: an assigned owner takes unconditionally (it fences whoever held it).
        `expected=e`: a re-take by the owner of epoch e, refused (CAS_STALE_EPOCH) if
        another owner has taken the partition since.
        """
        code, cur = self._take(keys=[self.key(partition, "epoch"), self.key(partition, "lease")],
                               args=["" if expected is None else expected, owner, lease_ms])
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def current_epoch(self, partition: int) -> int:
        raw = self.r.get(self.key(partition, "epoch"))
        return int(raw) if raw is not None else 0

    def renew_lease(self, partition: int, epoch: int, owner: str, lease_ms: int) -> CasResult:
        code, cur = self._renew(keys=[self.key(partition, "epoch"), self.key(partition, "lease")], args=[epoch, owner, lease_ms])
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def release_lease(self, partition: int, epoch: int, owner: str) -> CasResult:
        """Graceful stop: drop the lease if it is still ours, so status shows the partition unowned.

        One script: a zombie (stale epoch) never deletes the new owner's lease.
        """
        code, cur = self._release(keys=[self.key(partition, "epoch"), self.key(partition, "lease")], args=[epoch, owner])
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def lease(self, partition: int) -> tuple[str | None, int]:
        """(owner, remaining ms) of the partition's lease; (None, 0) when expired."""
        pipe = self.r.pipeline()
        pipe.get(self.key(partition, "lease"))
        pipe.pttl(self.key(partition, "lease"))
        owner, ttl = pipe.execute()
        if owner is None:
            return None, 0
        return owner.decode(), max(int(ttl), 0)

    # --- checkpoints -----------------------------------------------------
    def write_checkpoint(self, partition: int, epoch: int, offset: int, blob: bytes) -> CasResult:
        code, cur = self._cas_ckpt(
            keys=[self.key(partition, "epoch"), self.key(partition, "ckpt"), self.key(partition, "ckpt:prev")],
            args=[epoch, offset, blob, int(time.time() * 1000)],
        )
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def _read(self, key: str) -> StoredCheckpoint | None:
        data = self.r.hgetall(key)
        if not data or b"blob" not in data:
            return None
        return StoredCheckpoint(
            offset=int(data[b"offset"]),
            epoch=int(data.get(b"epoch", b"0")),
            blob=bytes(data[b"blob"]),
            ts_ms=int(data.get(b"ts_ms", b"0")),
        )

    def read_checkpoint(self, partition: int) -> StoredCheckpoint | None:
        return self._read(self.key(partition, "ckpt"))

    def read_previous_checkpoint(self, partition: int) -> StoredCheckpoint | None:
        return self._read(self.key(partition, "ckpt:prev"))

    def checkpoint_meta(self, partition: int) -> dict[str, int]:
        """Offset, epoch, age and size without transferring the blob."""
        vals = self.r.hmget(self.key(partition, "ckpt"), ["offset", "epoch", "ts_ms", "size"])
        if vals[0] is None:
            return {}
        return {"offset": int(vals[0]), "epoch": int(vals[1] or 0), "ts_ms": int(vals[2] or 0), "size": int(vals[3] or 0)}

    # --- at_least_once offsets ------------------------------------------
    def commit_offset(self, partition: int, epoch: int, offset: int) -> CasResult:
        code, cur = self._cas_offset(keys=[self.key(partition, "epoch"), self.key(partition, "offset")], args=[epoch, offset])
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def committed_offset(self, partition: int) -> int | None:
        raw = self.r.get(self.key(partition, "offset"))
        return int(raw) if raw is not None else None

    # --- start position of a new partition ------------------------------
    def record_start(self, partition: int, epoch: int, offset: int) -> CasResult:
        """Keep `offset` as where the partition's first model starts, unless one is kept already.

        `current` is the offset kept (this one, or the earlier owner's) when ok.
        """
        code, cur = self._start(keys=[self.key(partition, "epoch"), self.key(partition, "start")], args=[epoch, offset])
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def start_offset(self, partition: int) -> int | None:
        raw = self.r.get(self.key(partition, "start"))
        return int(raw) if raw is not None else None

    # --- status ------------------------------------------------------------
    def publish_status(self, partition: int, epoch: int, fields: dict[str, str | int | float]) -> CasResult:
        """Write the partition's status hash if `epoch` is still current: a zombie's status never lands."""
        flat: list[str | int | float] = [epoch]
        for name, value in fields.items():
            flat += [name, value]
        code, cur = self._status(keys=[self.key(partition, "epoch"), self.key(partition, "status")], args=flat)
        return CasResult(int(code) == CAS_OK, int(code), int(cur))

    def read_status(self, partition: int) -> dict[str, str]:
        raw = self.r.hgetall(self.key(partition, "status"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def incr_counter(self, partition: int, name: str, by: int = 1) -> int:
        return int(self.r.hincrby(self.key(partition, "counters"), name, by))

    def counters(self, partition: int) -> dict[str, int]:
        raw = self.r.hgetall(self.key(partition, "counters"))
        return {k.decode(): int(v) for k, v in raw.items()}
