"""Checkpoint blob codec: authenticate before unpickling, bound to one partition and one model spec.

A checkpoint is a pickle (river models are pickled objects), and unpickling
untrusted bytes runs arbitrary code. Anyone who can write to Redis could
plant one, so every blob carries an HMAC-SHA256 over its header and payload,
and `decode` verifies it in constant time before `pickle.loads` ever sees the
bytes.

The MAC key is derived from the checkpoint secret and (app, topic,
partition) (`partition_key`): a blob authentic for partition 0 does not
verify as partition 1's, so blobs cannot be swapped between partitions or
apps that share a secret.

Layout: MAGIC (6 bytes) | HMAC (32) | header length (2, big endian) |
JSON header {spec_hash, river_version} | pickle payload. The header names
the model spec and river version the model was built with, so a changed
`model:` section is noticed at restore (`spec_decision`), and can be read
after verification without unpickling anything. Blobs of the older layout
(MAGIC `SLCK1`, no header) still decode; their spec is unknown (None).

Without a configured secret a per-app development key is derived from the
app name, only when `checkpoint.allow_dev_key: true` (see
`AppConfig.signing_secret`): it catches corruption and accidental reuse, but
anyone who knows the app name can forge a checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Literal

import river

from streamlearn.config import ModelConfig
from streamlearn.errors import CheckpointError, CheckpointTamperedError
from streamlearn.model.model_state import ModelState, SpecId

__all__ = ["ModelState", "SpecId", "decode", "dev_key", "encode", "partition_key", "peek_spec", "spec_decision", "spec_id"]

MAGIC = b"SLCK2\n"
_LEGACY_MAGIC = b"SLCK1\n"
_MAC_LEN = 32
_HLEN = 2
SpecChoice = Literal["same", "reset", "keep"]


def dev_key(app: str) -> bytes:
    return hashlib.sha256(b"streamlearn-development-checkpoint-key:" + app.encode()).digest()


def partition_key(secret: bytes, app: str, topic: str, partition: int) -> bytes:
    """The MAC key of one partition's checkpoints: HMAC(secret, app | topic | partition)."""
    scope = b"\0".join([b"streamlearn-checkpoint-v2", app.encode(), topic.encode(), str(partition).encode()])
    return hmac.new(secret, scope, hashlib.sha256).digest()


def spec_id(spec: ModelConfig) -> SpecId:
    """The fingerprint of the `model:` section (every key: estimator, params, preprocessing, metric, seed, classes)."""
    # Publishing settings (model.publish) do not change the model: changing them must not look like a new spec.
    canonical = json.dumps(spec.model_dump(mode="json", exclude={"publish"}), sort_keys=True, separators=(",", ":"), default=str)
    return SpecId(hashlib.sha256(canonical.encode()).hexdigest()[:16], river.__version__)


def encode(state: ModelState, key: bytes) -> bytes:
    spec = state.spec_id
    header = json.dumps({"spec_hash": spec.spec_hash if spec else None, "river_version": river.__version__}).encode()
    payload = pickle.dumps(
        {
            "model": state.model,
            "metric": state.metric,
            "offset": state.offset,
            "model_version": state.model_version,
            "events": state.events,
            "extra": state.extra,
        },
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    body = len(header).to_bytes(_HLEN, "big") + header + payload
    return MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def _verify(blob: bytes, key: bytes) -> tuple[dict[str, str | None] | None, bytes]:
    """(header, pickle payload) if the blob is authentic; CheckpointTamperedError otherwise. Never unpickles."""
    magic = blob[: len(MAGIC)]
    if magic not in (MAGIC, _LEGACY_MAGIC) or len(blob) < len(MAGIC) + _MAC_LEN + 1:
        raise CheckpointTamperedError("checkpoint blob has no streamlearn header; refusing to unpickle it")
    mac = blob[len(MAGIC) : len(MAGIC) + _MAC_LEN]
    body = blob[len(MAGIC) + _MAC_LEN :]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise CheckpointTamperedError(
            "checkpoint HMAC mismatch (tampered, corrupted, written with another secret, "
            "or for another app/topic/partition); refusing to unpickle it"
        )
    if magic == _LEGACY_MAGIC:
        return None, body
    n = int.from_bytes(body[:_HLEN], "big")
    try:
        header = json.loads(body[_HLEN : _HLEN + n])
    except ValueError:
        raise CheckpointError("authentic checkpoint has an unreadable header") from None
    return header, body[_HLEN + n :]


def verify(blob: bytes, key: bytes) -> bytes:
    """The pickle payload if the blob is authentic; CheckpointTamperedError otherwise. Never unpickles."""
    return _verify(blob, key)[1]


def _spec_of(header: dict[str, str | None] | None) -> SpecId | None:
    if not header or not header.get("spec_hash"):
        return None
    return SpecId(str(header["spec_hash"]), str(header.get("river_version") or "?"))


def peek_spec(blob: bytes, key: bytes) -> SpecId | None:
    """The spec id of an authentic blob, read without unpickling the model (None: unknown)."""
    return _spec_of(_verify(blob, key)[0])


def decode(blob: bytes, key: bytes) -> ModelState:
    header, payload = _verify(blob, key)
    try:
        data = pickle.loads(payload)
    except Exception as exc:  # authentic but unreadable (e.g. library version change)
        raise CheckpointError(f"authentic checkpoint could not be unpickled: {exc}") from None
    return ModelState(
        model=data["model"],
        metric=data["metric"],
        offset=int(data["offset"]),
        model_version=int(data["model_version"]),
        events=int(data["events"]),
        extra=dict(data.get("extra", {})),
        spec_id=_spec_of(header),
    )


def spec_decision(stored: SpecId | None, current: SpecId, policy: str, *, topic: str, partition: int) -> SpecChoice:
    """What `checkpoint.on_spec_change` says to do with a checkpoint of `stored` spec under `current`.

    "same" when they match; "reset" or "keep" as configured; `fail` raises one
    line naming both specs and the choices.
    """
    if stored == current:
        return "same"
    if policy == "fail":
        raise CheckpointError(
            f"checkpoint was written for {stored or 'an unknown model spec (written before spec ids)'} "
            f"but the configured model is {current}",
            topic=topic, partition=partition,
            hint="set checkpoint.on_spec_change: reset (fresh model, replayed from the earliest retained offset) "
                 "or keep (restore the old model anyway), or restore the previous model: section",
        )
    if policy not in ("reset", "keep"):
        raise CheckpointError(f"checkpoint.on_spec_change: unknown policy {policy!r}", topic=topic, partition=partition)
    return "reset" if policy == "reset" else "keep"
