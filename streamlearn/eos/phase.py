"""Where one partition is in its life under the protocol.

The values are written to the partition's status hash in Redis and read by
`streamlearn status`, the metrics exporter and the demo, so they never change.
"""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    STARTING = "starting"  # created, ownership not yet restored
    REPLAYING = "replaying"  # rebuilding the model over [R, K), emitting nothing
    RUNNING = "running"  # live: predictions are emitted and committed
    STOPPED = "stopped"  # graceful stop: final checkpoint written, lease released
    FAILED = "failed"  # halted on an output Kafka refuses for good (status `error` says which): owned, not read
