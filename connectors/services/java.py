"""Find the ``java`` that runs the broker: ``JAVA_HOME`` first, then ``PATH``.

Checked before anything slow happens, so a machine without a JDK gets one
clear line instead of a Maven or broker failure later.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from connectors.services.errors import JavaNotFoundError


def find_java() -> str:
    """Absolute path of the java executable, or raise ``JavaNotFoundError``."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found:
        return found
    where = f"JAVA_HOME={home} has no bin/java and " if home else ""
    raise JavaNotFoundError(f"Java not found: {where}no java on PATH (the Kafka broker needs it)")
