"""docs/configuration.md is generated from the config model and must be up to date."""

from __future__ import annotations

from streamlearn.config import AppConfig
from streamlearn.tools import docs_config


def test_committed_configuration_reference_is_current() -> None:
    committed = docs_config.DOC_PATH.read_text()
    assert committed == docs_config.render(), "run `python -m streamlearn.tools.docs_config --write` and commit docs/configuration.md"


def _keys(prefix: str, ann: object) -> list[str]:
    """Dotted keys of a field; nested sections (model.publish.gate) down to their leaves."""
    fields = getattr(ann, "model_fields", None) if isinstance(ann, type) else None
    if fields is None:
        return [prefix]
    return [k for name, f in fields.items() for k in _keys(f"{prefix}.{name}", f.annotation)]


def test_every_key_and_its_env_override_is_documented() -> None:
    text = docs_config.render()
    for section, field in AppConfig.model_fields.items():
        for key in _keys(section, field.annotation):
            assert f"`{key}`" in text
            assert "`STREAMLEARN_" + key.upper().replace(".", "__") + "`" in text
