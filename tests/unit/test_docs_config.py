"""docs/configuration.md is generated from the config model and must be up to date."""

from __future__ import annotations

from streamlearn.config import AppConfig
from streamlearn.tools import docs_config


def test_committed_configuration_reference_is_current() -> None:
    committed = docs_config.DOC_PATH.read_text()
    assert committed == docs_config.render(), "run `python -m streamlearn.tools.docs_config --write` and commit docs/configuration.md"


def test_every_key_and_its_env_override_is_documented() -> None:
    text = docs_config.render()
    for section, field in AppConfig.model_fields.items():
        ann = field.annotation
        keys = [f"{section}.{k}" for k in ann.model_fields] if isinstance(ann, type) and hasattr(ann, "model_fields") else [section]
        for key in keys:
            assert f"`{key}`" in text
            assert "`STREAMLEARN_" + key.upper().replace(".", "__") + "`" in text
