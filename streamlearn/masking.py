"""Masking of secret-bearing values wherever config or errors are shown.

Keys named like a password, secret, token, credential or ``sasl.*``, and the
credentials part of any URL, never reach output, logs or error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

MASK = "***"
# Key names whose values are secrets wherever they appear (config sections, librdkafka passthrough).
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential|private|^sasl\.|\.sasl\.|ssl\.key\.pem)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s]+)@")


def is_secret_key(key: str) -> bool:
    """True for keys like kafka.consumer.sasl.password, checkpoint.secret, *token*, sasl.*."""
    return bool(_SECRET_KEY.search(key))


def mask_text(text: str) -> str:
    """Text with the credentials of every URL in it masked: redis://alice:pw@h → redis://***@h."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def mask(value: Any, key: str = "") -> Any:
    """A copy of `value` with secret-bearing keys masked and credentials removed from URLs."""
    if isinstance(value, Mapping):
        return {k: mask(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, key) for v in value]
    if value is not None and is_secret_key(key):
        return MASK
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    return value

