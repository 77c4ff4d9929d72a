"""The learning side of the app config: the model, delayed labels, publishing and serving.

Apart from ``streamlearn.config_sections`` (where the data comes from and how
it is processed) so each file stays readable; import them from
``streamlearn.config``, which re-exports every name here.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Literal

from pydantic import Field, field_validator

from streamlearn.config_sections import _Section


class PreprocessingStep(_Section):
    name: str = Field(description="Dotted path of a river transformer, e.g. river.preprocessing.StandardScaler.")
    params: dict[str, Any] = Field(default_factory=dict)


class PublishGateConfig(_Section):
    window: int = Field(
        1000, ge=10, le=100_000,
        description="Labelled events the gate compares the candidate and the served version on (the last ones learned).",
    )
    max_drop: float = Field(
        0.02, ge=0,
        description="A candidate whose metric over the window is worse than the served version's by more than this "
                    "(in the metric's own units) is refused (reason metric_drop).",
    )
    max_size_mb: float = Field(64.0, gt=0, description="A candidate whose blob is larger is refused (reason too_large).")
    test_force_bad: bool = Field(
        False, description="Test only: every candidate is replaced by one that answers the least likely class, "
                           "to prove the gate refuses a regressing model. Never set it in production.",
    )


class PublishConfig(_Section):
    every_s: float = Field(
        10.0, ge=0,
        description="Each partition's model is considered for publishing as a new version this often (0: never). "
                    "Published from the checkpoint step, so a version reflects committed offsets only.",
    )
    keep: int = Field(5, ge=1, le=1000, description="Published versions kept per partition (the served one is always kept).")
    gate: PublishGateConfig = Field(default_factory=PublishGateConfig)  # type: ignore[arg-type]


class ModelConfig(_Section):
    estimator: str = Field("river.linear_model.LogisticRegression", description="Dotted path of a river estimator class.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the estimator.")
    preprocessing: list[str | PreprocessingStep] = Field(
        default_factory=list,
        description="Transformers applied before the estimator, in order: dotted paths or {name, params}.",
    )
    metric: str = Field("river.metrics.Accuracy", description="Prequential metric (dotted path of a river metric).")
    seed: int = Field(42, description="Seed passed to every component that takes one, so runs are reproducible.")
    classes: list[Any] | None = Field(
        None, description="Allowed labels for a classifier; a label outside goes to the DLQ. Default: any (bool for binary models)."
    )
    publish: PublishConfig = Field(default_factory=PublishConfig)  # type: ignore[arg-type]

    @field_validator("estimator", "metric")
    @classmethod
    def _importable(cls, v: str) -> str:
        import_dotted(v)
        return v

    @field_validator("preprocessing")
    @classmethod
    def _steps_importable(cls, v: list[str | PreprocessingStep]) -> list[str | PreprocessingStep]:
        for step in v:
            import_dotted(step if isinstance(step, str) else step.name)
        return v


class LabelsConfig(_Section):
    source: Literal["inline", "topic"] = Field(
        "inline", description="inline: each event carries its label (predict and learn in one step). topic: labels arrive "
                              "later on kafka.label_topic and are joined with the features used for the prediction (docs/labels.md).",
    )
    window_s: float = Field(600.0, gt=0, le=90 * 86400, description="A label joins its event if it is at most this many seconds "
                            "(event time) after it; an event whose window closes without a label expires.")
    early_window_s: float = Field(120.0, ge=0, le=90 * 86400, description="A label may come this many seconds (event time) "
                                  "before its event; it waits for it that long, then is an orphan_label.")
    on_expiry: Literal["drop", "default"] = Field("drop", description="An event whose window closed without a label: drop "
                                                  "(never learned) or learn it once with labels.default_label.")
    default_label: Any = Field(None, description="The label an expired event is learned with when on_expiry is default "
                               "(e.g. false for 'no click').")
    max_pending: int = Field(2_000_000, ge=1, le=100_000_000, description="Most pending events (and most early labels) per "
                             "partition; when full the oldest expire early (counted as evicted).")
    pause_held: int = Field(50_000, ge=10, le=10_000_000, description="On a backlog, a stream (events or labels) with this "
                            "many fetched records held for the other to catch up is paused in the consumer, and resumed when a "
                            "fifth of them are left (docs/labels.md, Pacing); more holds more in memory, fewer refetches more.")
    idle_advance_s: float = Field(30.0, gt=0, description="When one stream (events or labels) has had no record for this long "
                                  "(wall clock), its event-time clock is moved up to the other's (written to the join journal).")
    journal_topic: str | None = Field(None, description="Internal join journal, co-partitioned with the input: the order the "
                                      "join consumed events and labels, for exact replay. Default: `{input_topic}.join-journal`.")

    @field_validator("default_label")
    @classmethod
    def _default_is_scalar(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, bool | int | float | str):
            raise ValueError("must be a label value (bool, number or string)")
        return v


class ServingConfig(_Section):
    host: str = Field("127.0.0.1", description="Address `streamlearn serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `streamlearn serve` (POST /predict, GET /models, /healthz, /metrics).")
    partitioner: Literal["consistent_random", "murmur2"] = Field(
        "consistent_random",
        description="How a request id maps to the input partition its key was produced to: consistent_random "
                    "(librdkafka's default, CRC32; what `streamlearn produce` uses) or murmur2 (Java clients' default).",
    )
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused with 413.")
    max_batch: int = Field(1000, ge=1, description="Most events in one POST /predict list.")
    replicas: int = Field(1, ge=1, le=64, description="Ray Serve replicas of the model deployment.")
    ingress: Literal["haproxy", "proxy"] = Field(
        "proxy",
        description="How HTTP reaches the replicas when `streamlearn serve` starts its own Ray: proxy (Ray Serve's "
                    "Python HTTP proxy, one Ray actor call per request; listens on serving.host only) or haproxy "
                    "(Ray Serve's HAProxy ingress, a C proxy forwarding to each replica's own HTTP server: about a "
                    "fifth of the CPU per request, but Ray 2.60 binds the replicas' HTTP ports and HAProxy's "
                    "stats/metrics ports on all interfaces, so use it only on a trusted network). On a cluster "
                    "joined with --ray-address, its nodes' RAY_SERVE_* environment decides.",
    )
    nice: int | None = Field(
        None, ge=-20, le=19,
        description="CPU priority (Unix nice value) of `streamlearn serve`, the local Ray it starts (proxy or "
                    "HAProxy, replicas) and its session's autogroup, to give request-time serving priority over "
                    "learning and the broker on a shared machine: e.g. -10 (run serve in a session of its own: "
                    "systemd, setsid). Below the inherited value it needs root or CAP_SYS_NICE (refused at start "
                    "otherwise). null: inherited. Not applied on a cluster joined with --ray-address.",
    )
    realtime_priority: int | None = Field(
        None, ge=1, le=99,
        description="Real-time priority (Linux SCHED_RR, 1-99) of `streamlearn serve` and the local Ray it starts: a "
                    "request preempts every normally scheduled process at once (the learner, the broker, batch jobs), "
                    "where serving.nice only weighs serve's share of the CPU. For a request-time latency target on a "
                    "shared machine; needs root, CAP_SYS_NICE or LimitRTPRIO (refused at start otherwise). The kernel "
                    "keeps 5 % of each core for normal processes (kernel.sched_rt_runtime_us), so serving busy at its "
                    "limit can starve the learner: size it for its load. null: normal scheduling. Not applied on a "
                    "cluster joined with --ray-address.",
    )




def import_dotted(path: str) -> Any:
    """Import `package.module.Attr`; a clear ValueError (for pydantic) when it fails."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"'{path}' is not a dotted path (e.g. river.linear_model.LogisticRegression)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module '{module_name}' ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=1)
        extra = f"; did you mean {module_name}.{close[0]}?" if close else ""
        raise ValueError(f"module '{module_name}' has no '{attr}'{extra}") from None
