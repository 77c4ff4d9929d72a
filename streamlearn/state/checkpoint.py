"""Checkpoint blob codec: authenticate before unpickling.

A checkpoint is a pickle (river models are pickled objects), and unpickling
untrusted bytes runs arbitrary code. Anyone who can write to Redis could
plant one, so every blob carries an HMAC-SHA256 over its payload, keyed by
the checkpoint secret, and `decode` verifies it in constant time before
`pickle.loads` ever sees the bytes.

Layout: MAGIC (6 bytes) | HMAC (32 bytes) | pickle payload.

Without a configured secret a per-app development key is derived from the
app name: it still catches corruption and accidental cross-app reuse, but it
does not stop a forger who knows the app name. Production deployments set
STREAMLEARN_CHECKPOINT_SECRET (see docs/configuration.md).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle

from streamlearn.errors import CheckpointError, CheckpointTamperedError
from streamlearn.model.model_state import ModelState

__all__ = ["ModelState", "decode", "dev_key", "encode"]

MAGIC = b"SLCK1\n"
_MAC_LEN = 32


def dev_key(app: str) -> bytes:
    return hashlib.sha256(b"streamlearn-development-checkpoint-key:" + app.encode()).digest()


def encode(state: ModelState, key: bytes) -> bytes:
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
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return MAGIC + mac + payload


def verify(blob: bytes, key: bytes) -> bytes:
    """The payload if the blob is authentic; CheckpointTamperedError otherwise. Never unpickles."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _MAC_LEN + 1:
        raise CheckpointTamperedError("checkpoint blob has no streamlearn header; refusing to unpickle it")
    mac = blob[len(MAGIC) : len(MAGIC) + _MAC_LEN]
    payload = blob[len(MAGIC) + _MAC_LEN :]
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise CheckpointTamperedError(
            "checkpoint HMAC mismatch (tampered, corrupted, or written with another secret); refusing to unpickle it"
        )
    return payload


def decode(blob: bytes, key: bytes) -> ModelState:
    payload = verify(blob, key)
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
    )
