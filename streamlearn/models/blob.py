"""Published model blobs: signed like checkpoints, verified before anything is unpickled.

A published blob is a checkpoint blob (`streamlearn.state.checkpoint`: the
same HMAC with the app's checkpoint secret, no second scheme) whose signed
payload also carries the version's metadata record. So the lineage cannot be
altered without breaking the signature, and a blob copied from another app,
topic, partition or version is refused by `open_blob` even when the MAC holds
(e.g. two apps sharing one secret).

`export` writes the blob as it is (`<name>.slmodel`) and its metadata next to
it (`<name>.json`); `load(path, secret)` verifies the file and returns the
model, ready to predict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlearn.config import AppConfig
from streamlearn.errors import CheckpointError, CheckpointTamperedError
from streamlearn.model.codec import proba_to_json
from streamlearn.model.spec import model_kind
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

META_KEY = "published"


class ForeignModelError(CheckpointTamperedError):
    """An authentic blob that belongs to another app, topic, partition or version."""


@dataclass
class PublishedModel:
    """A verified published version: the model and its metadata record."""

    model: Any
    meta: dict[str, Any]
    is_classifier: bool

    @property
    def version(self) -> int:
        return int(self.meta["version"])

    def predict(self, features: dict[str, Any]) -> tuple[Any, dict[str, float] | None]:
        """(prediction, proba) exactly as the stream computes them (`model/step.py`): argmax of proba for classifiers."""
        if self.is_classifier:
            proba = self.model.predict_proba_one(features)
            pred = max(proba, key=proba.__getitem__) if proba else None
            return pred, proba_to_json({k: float(v) for k, v in proba.items()})
        return self.model.predict_one(features), None


def sign(state: ModelState, meta: dict[str, Any], key: bytes) -> bytes:
    """The state's model signed with its metadata (the caller's state is not changed)."""
    published = ModelState(model=state.model, metric=state.metric, offset=state.offset, model_version=state.model_version,
                           events=state.events, extra={META_KEY: meta}, spec_id=state.spec_id)
    return checkpoint.encode(published, key)


def open_blob(blob: bytes, key: bytes, *, expect: dict[str, Any] | None = None) -> PublishedModel:
    """Verify (HMAC first, then unpickle), then check the lineage against `expect` (app, topic, partition, version)."""
    state = checkpoint.decode(blob, key)
    meta = state.extra.get(META_KEY)
    if not isinstance(meta, dict):
        raise ForeignModelError("blob is a checkpoint, not a published model version")
    for field, want in (expect or {}).items():
        if meta.get(field) != want:
            raise ForeignModelError(f"published model is foreign: its {field} is {meta.get(field)!r}, expected {want!r}")
    return PublishedModel(state.model, meta, model_kind(state.model).is_classifier)


def export(blob: bytes, meta: dict[str, Any], directory: Path, name: str) -> tuple[Path, Path]:
    """Write `<name>.slmodel` (the signed blob) and `<name>.json` (its metadata); returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path, meta_path = directory / f"{name}.slmodel", directory / f"{name}.json"
    model_path.write_bytes(blob)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return model_path, meta_path


def key_for(cfg: AppConfig, partition: int) -> bytes:
    """The partition's MAC key, as the worker signs its checkpoints and versions with
    (`checkpoint.partition_key` of the app's secret; ConfigError without one unless `allow_dev_key`)."""
    secret = cfg.signing_secret()
    return checkpoint.partition_key(secret if secret is not None else checkpoint.dev_key(cfg.app), cfg.app,
                                    cfg.kafka.input_topic, partition)


def load(path: str | Path, secret: str | bytes) -> PublishedModel:
    """Load an exported model file: verifies its HMAC with `secret` before unpickling.

    `secret` is the app's checkpoint secret (`STREAMLEARN_CHECKPOINT_SECRET`;
    `dev_secret(app)` for an app that runs on the development key). The MAC key
    is bound to the version's app, topic and partition, read from the metadata
    file next to it (`<name>.json`): an edited metadata file fails verification.
    """
    model_path = Path(path)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    base = secret.encode() if isinstance(secret, str) else secret
    key = checkpoint.partition_key(base, str(meta["app"]), str(meta["topic"]), int(meta["partition"]))
    try:
        return open_blob(model_path.read_bytes(), key, expect={f: meta[f] for f in ("app", "topic", "partition", "version")})
    except CheckpointError as exc:
        raise type(exc)(f"{path}: {exc.message}", hint=exc.hint) from None


def dev_secret(app: str) -> bytes:
    """The base key of an app that runs without a checkpoint secret (`checkpoint.allow_dev_key`)."""
    return checkpoint.dev_key(app)
