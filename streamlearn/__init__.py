"""streamlearn: online machine learning on Kafka streams with exactly-once predictions.

The public Python API is ``App`` (load a config, run, stop, status); see
``streamlearn.app``. Importing the package stays cheap: Ray and the Kafka
client load only when an app runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["App", "__version__"]

if TYPE_CHECKING:
    from streamlearn.app import App


def __getattr__(name: str) -> Any:
    if name == "App":
        from streamlearn.app import App

        return App
    raise AttributeError(f"module 'streamlearn' has no attribute {name!r}")
