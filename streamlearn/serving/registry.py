"""The model serving answers with, per partition: read from Redis, verified, swapped atomically.

`refresh(p)` follows the partition's served pointer (`connectors.version_store`):
it loads the pointed version, verifies it (HMAC before unpickling, then its
lineage: this app, topic, partition and version) and only then swaps it in.
A tampered or foreign version is refused: the previous one keeps serving,
the refusal is logged and shown by GET /models. `?version=V` requests load
V the same way (a few are cached).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.version_store import VersionStore
from streamlearn import logs
from streamlearn.errors import CheckpointError
from streamlearn.models.blob import PublishedModel, open_blob

log = logs.get("serving")
_CACHE = 16


@dataclass
class Slot:
    """What one partition serves now."""

    model: PublishedModel | None = None
    mode: str = "latest"
    since_ms: int = 0  # when this replica swapped it in
    refused: dict[str, Any] | None = None  # the last version refused, and why


class Registry:
    def __init__(self, versions: VersionStore, key_of: Callable[[int], bytes], app: str, topic: str, partitions: int) -> None:
        self.versions, self.key_of, self.app, self.topic, self.partitions = versions, key_of, app, topic, partitions
        self._slots = {p: Slot() for p in range(partitions)}
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int], PublishedModel] = OrderedDict()

    def refresh_all(self) -> None:
        for p in range(self.partitions):
            self.refresh(p)

    def refresh(self, p: int) -> None:
        """Follow the partition's served pointer; keep the current model if the new one is refused."""
        if p not in self._slots:
            return
        served = self.versions.served(p)
        slot = self._slots[p]
        slot.mode = served.mode
        if served.version is None or (slot.model is not None and slot.model.version == served.version):
            return
        model = self._load(p, served.version)
        if model is not None:
            with self._lock:
                slot.model, slot.since_ms = model, int(time.time() * 1000)
            logs.event(log, logging.INFO, "serving_version", topic=self.topic, partition=p, version=served.version, mode=served.mode)

    def _load(self, p: int, version: int) -> PublishedModel | None:
        stored = self.versions.read(p, version)
        if stored is None:
            self._refuse(p, version, "missing", "the version is not in Redis (trimmed or never written)")
            return None
        try:
            return open_blob(stored[1], self.key_of(p), expect={"app": self.app, "topic": self.topic, "partition": p, "version": version})
        except CheckpointError as exc:
            self._refuse(p, version, "not_authentic", exc.message)
            return None

    def _refuse(self, p: int, version: int, reason: str, detail: str) -> None:
        current = self._slots[p].model
        self._slots[p].refused = {"version": version, "reason": reason, "detail": detail, "at_ms": int(time.time() * 1000)}
        logs.event(log, logging.WARNING, "serving_refused_version", topic=self.topic, partition=p, version=version,
                   reason=reason, detail=detail, keeps=current.version if current is not None else None)

    def get(self, p: int, version: int | None = None) -> PublishedModel | None:
        """The served model of the partition, or version `version` of it (None: none available)."""
        slot = self._slots[p]
        if version is None or (slot.model is not None and slot.model.version == version):
            return slot.model
        with self._lock:
            cached = self._cache.get((p, version))
        if cached is not None:
            return cached
        model = self._load(p, version)
        if model is not None:
            with self._lock:
                self._cache[(p, version)] = model
                while len(self._cache) > _CACHE:
                    self._cache.popitem(last=False)
        return model

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for p, slot in sorted(self._slots.items()):
            m = slot.model
            out.append({"partition": p, "version": m.version if m is not None else None, "mode": slot.mode,
                        "offset": m.meta.get("offset") if m is not None else None,
                        "metric": m.meta.get("metric") if m is not None else None,
                        "since_ms": slot.since_ms or None, "refused": slot.refused})
        return out
