"""Find the ``java`` that runs the broker: ``JAVA_HOME`` first, then ``PATH``.

Checked before anything slow happens, so a machine without a suitable JDK
gets one clear line instead of a Maven or broker failure later. Kafka 4.x
brokers need Java 17 or newer.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from connectors.services.errors import JavaNotFoundError

MIN_JAVA = 17


def find_java() -> str:
    """Absolute path of a Java 17+ executable, or raise ``JavaNotFoundError``."""
    home = os.environ.get("JAVA_HOME")
    found: str | None = None
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found = str(candidate)
    found = found or shutil.which("java")
    if not found:
        where = f"JAVA_HOME={home} has no bin/java and " if home else ""
        raise JavaNotFoundError(
            f"Java not found: {where}no java on PATH (the Kafka broker needs it)")
    major = java_major_version(found)
    if major is not None and major < MIN_JAVA:
        raise JavaNotFoundError(
            f"Java {major} at {found} is too old: Apache Kafka 4 needs Java {MIN_JAVA}+")
    return found


@functools.lru_cache(maxsize=8)
def java_major_version(java: str) -> int | None:
    """Major version of ``java`` (8 for "1.8.0_392", 17 for "17.0.15"); None if unknown."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,
                             check=False).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major
