"""One validated configuration object: YAML file + `STREAMLEARN_...` environment overrides.

Why one object: every knob (topics, batch sizes, checkpoint cadence, model
spec) is checked once at start, so a typo fails before any service is
touched, with a message naming the key and the fix. Environment variables
override the file with `__` separating levels, e.g.
`STREAMLEARN_PROCESSING__WORKERS=4` or `STREAMLEARN_KAFKA__BOOTSTRAP=host:9092`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    model_validator,
)

from streamlearn.config_model import (  # re-exported: the sections are part of this module's API
    LabelsConfig,
    ModelConfig,
    PreprocessingStep,
    PublishConfig,
    PublishGateConfig,
    ServingConfig,
    import_dotted,
)
from streamlearn.config_sections import (  # re-exported too
    SECRET_ENV,
    AutoscaleConfig,
    CheckpointConfig,
    FieldsConfig,
    KafkaConfig,
    MetricsConfig,
    ProcessingConfig,
    RayConfig,
    RedisConfig,
    _Section,
    start_position,
)
from streamlearn.errors import ConfigError
from streamlearn.masking import MASK, is_secret_key, mask, mask_text

__all__ = [
    "ENV_PREFIX", "MASK", "SECRET_ENV", "AppConfig", "AutoscaleConfig", "CheckpointConfig", "FieldsConfig", "KafkaConfig", "LabelsConfig",
    "MetricsConfig", "ModelConfig", "PreprocessingStep", "ProcessingConfig", "PublishConfig", "PublishGateConfig",
    "RayConfig", "RedisConfig", "ServingConfig", "config_from_wire", "import_dotted", "is_secret_key", "load_config", "mask",
    "mask_text", "start_position",
]

ENV_PREFIX = "STREAMLEARN_"
# Environment variables with the prefix that are not config overrides.
_NON_CONFIG_ENV = {
    "STREAMLEARN_CHECKPOINT_SECRET",
    "STREAMLEARN_SERVICES",
    "STREAMLEARN_CACHE_DIR",
    "STREAMLEARN_KAFKA_VERSION",
    "STREAMLEARN_REDIS_PASSWORD",
    "STREAMLEARN_KEEP_SERVICES",
    "STREAMLEARN_FAULTS",
    "STREAMLEARN_LOG_LEVEL",
}



class AppConfig(_Section):
    app: str = Field("streamlearn", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="Application name: scopes Redis keys, transactional ids and the consumer group.")
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)  # type: ignore[arg-type]
    redis: RedisConfig = Field(default_factory=RedisConfig)  # type: ignore[arg-type]
    model: ModelConfig = Field(default_factory=ModelConfig)  # type: ignore[arg-type]
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)  # type: ignore[arg-type]
    fields: FieldsConfig = Field(default_factory=FieldsConfig)  # type: ignore[arg-type]
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)  # type: ignore[arg-type]
    labels: LabelsConfig = Field(default_factory=LabelsConfig)  # type: ignore[arg-type]
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]
    serving: ServingConfig = Field(default_factory=ServingConfig)  # type: ignore[arg-type]
    ray: RayConfig = Field(default_factory=RayConfig)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _labels_consistent(self) -> AppConfig:
        lc = self.labels
        if lc.source == "topic" and lc.on_expiry == "default" and lc.default_label is None:
            raise ValueError("labels.default_label is required with labels.on_expiry: default (e.g. default_label: false)")
        if lc.source == "topic" and self.processing.guarantee != "exactly_once":
            raise ValueError("labels.source: topic needs processing.guarantee: exactly_once (the join journal is transactional)")
        return self

    @property
    def label_mode(self) -> bool:
        """Delayed labels: events and labels on two co-partitioned topics, joined (streamlearn.labels)."""
        return self.labels.source == "topic"

    @property
    def label_topic(self) -> str:
        return self.kafka.label_topic or f"{self.kafka.input_topic}.labels"

    @property
    def samples_topic(self) -> str | None:
        """The training-sample log: on by default in label mode; in inline mode only when kafka.samples_topic is set."""
        if self.kafka.samples_topic:
            return self.kafka.samples_topic
        return f"{self.kafka.input_topic}.samples" if self.label_mode else None

    @property
    def journal_topic(self) -> str:
        return self.labels.journal_topic or f"{self.kafka.input_topic}.join-journal"

    @property
    def group_id(self) -> str:
        return self.kafka.group_id or f"streamlearn-{self.app}"

    def checkpoint_secret(self) -> bytes | None:
        env = os.environ.get(SECRET_ENV)
        if env:
            return env.encode()
        if self.checkpoint.secret is not None:
            return self.checkpoint.secret.get_secret_value().encode()
        return None

    def signing_secret(self) -> bytes | None:
        """The checkpoint secret, or None when the per-app development key is allowed; else a ConfigError.

        Called before anything starts, so a deployment without a secret fails at
        once with the key to set, instead of signing with a forgeable key.
        """
        secret = self.checkpoint_secret()
        if secret is None and not self.checkpoint.allow_dev_key:
            raise ConfigError(
                f"checkpoint.secret: no checkpoint secret is set ({SECRET_ENV} or checkpoint.secret)",
                hint=f"set {SECRET_ENV} to a long random value (e.g. `openssl rand -hex 32`), the same on every node; "
                     "for local development only, set checkpoint.allow_dev_key: true",
            )
        return secret

    def to_wire(self) -> dict[str, Any]:
        """Plain dict with secrets revealed, for shipping to Ray actors as an argument (never logged).

        The checkpoint secret travels here, resolved from the environment or the
        file, and not in Ray's runtime_env, which every user of a cluster can list.
        """
        data = self.model_dump(mode="python")
        data["redis"]["url"] = self.redis.url.get_secret_value()
        secret = self.checkpoint_secret()
        if secret is not None:
            data["checkpoint"]["secret"] = secret.decode()
        return data

    def masked(self) -> dict[str, Any]:
        """The config as JSON-ready data with every secret-bearing value masked (`streamlearn config`)."""
        return mask(self.model_dump(mode="json"))



def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`STREAMLEARN_A__B=v` → {"a": {"b": yaml(v)}}; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key in _NON_CONFIG_ENV:
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        if path == ["app"] or len(path) > 1:
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            try:
                node[path[-1]] = yaml.safe_load(raw) if raw != "" else ""
            except yaml.YAMLError:
                node[path[-1]] = raw
    return out


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping):
            merged[k] = _merge(dict(merged[k]), v)
        else:
            merged[k] = v
    return merged


_FIX_HINTS = {
    "extra_forbidden": "remove it or check its spelling against docs/configuration.md",
    "missing": "add it to the file",
    "literal_error": "use one of the allowed values",
}


def _format_validation_error(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = mask_text(err["msg"].removeprefix("Value error, "))
        if err["type"] == "extra_forbidden":
            parent_model = _section_for(err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), list(parent_model), n=1) if parent_model else []
            fix = f"did you mean '{close[0]}'?" if close else _FIX_HINTS["extra_forbidden"]
            lines.append(f"{key}: unknown key; fix: {fix}")
        else:
            got = err.get("input")
            got_txt = f" (got {mask(got, key)!r})" if not isinstance(got, dict | list) and got is not None else ""
            fix = _FIX_HINTS.get(err["type"], "")
            lines.append(f"{key}: {msg}{got_txt}" + (f"; fix: {fix}" if fix else ""))
    return ConfigError(
        f"invalid configuration in {source}: " + " | ".join(lines),
        hint="see docs/configuration.md for every key, its default and an example",
    )


def _section_for(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = AppConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> AppConfig:
    """Read the YAML file (optional), apply environment overrides, then ``overrides``, validate.

    ``overrides`` (nested like the file) come last: code that embeds an app
    (``streamlearn.App``) states them on purpose, so they beat the environment.
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.exists():
            raise ConfigError(f"config file {p} does not exist", hint="pass -c with the path of your app.yaml (see examples/app.yaml)")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}".replace("\n", " "), hint="check indentation and quoting") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping at the top level (app:, kafka:, ...)")
        data = loaded
    env = _env_overrides(environ)
    if env:
        source += " + STREAMLEARN_* environment"
    data = _merge(data, env)
    if overrides:
        source += " + overrides"
        data = _merge(data, overrides)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_validation_error(exc, source) from None


def config_from_wire(data: Mapping[str, Any]) -> AppConfig:
    """Rebuild the config inside a Ray actor (already validated by the driver)."""
    return AppConfig.model_validate(dict(data))
