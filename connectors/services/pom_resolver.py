"""Resolve a runtime dependency tree from POMs on a Maven repository, the way Maven 3 does.

Used to write and to check the pinned jar list (``kafka_pins.py``), so the
direct download (no ``mvn``) fetches the same jars as ``mvn
dependency:copy-dependencies -DincludeScope=runtime`` would. It implements
the parts of Maven's model the Kafka broker's tree needs: parent POMs,
``${property}`` interpolation, ``dependencyManagement`` (with ``import``
BOMs) filling in missing versions, scopes (compile and runtime kept;
test, provided, system dropped), optional dependencies (dropped below the
roots), exclusions (with ``*`` wildcards) and "nearest wins, then first
declared" version mediation (breadth first).

Example::

    >>> Artifact("org.apache.kafka", "kafka_2.13", "4.1.1").filename
    'kafka_2.13-4.1.1.jar'
"""

from __future__ import annotations

import re
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

CENTRAL = "https://repo1.maven.org/maven2"
KEPT_SCOPES = ("compile", "runtime")
FETCH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Artifact:
    """A jar in a Maven repository: ``group:artifact:version[:classifier]``."""

    group: str
    artifact: str
    version: str
    classifier: str = ""

    @property
    def coordinate(self) -> str:
        tail = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.artifact}:{self.version}{tail}"

    @property
    def filename(self) -> str:
        """The file name ``mvn dependency:copy-dependencies`` gives it."""
        tail = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{tail}.jar"

    def path(self, extension: str = "jar") -> str:
        """Path in the repository, e.g. ``org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar``."""
        stem = self.filename.removesuffix(".jar")
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{stem}.{extension}"

    @classmethod
    def parse(cls, coordinate: str) -> Artifact:
        """``"g:a:v"`` or ``"g:a:v:classifier"``."""
        parts = coordinate.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"not a Maven coordinate: {coordinate!r}")
        return cls(*parts)


@dataclass
class Dependency:
    group: str
    artifact: str
    version: str | None
    scope: str | None
    classifier: str
    type: str
    optional: bool
    exclusions: frozenset[tuple[str, str]]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.artifact, self.type, self.classifier)


@dataclass
class Pom:
    """The effective parts of a POM: properties, managed and declared dependencies."""

    group: str
    artifact: str
    version: str
    properties: dict[str, str] = field(default_factory=dict)
    managed: dict[tuple[str, str, str, str], Dependency] = field(default_factory=dict)
    dependencies: list[Dependency] = field(default_factory=list)


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _text(element: ET.Element | None, name: str) -> str | None:
    if element is None:
        return None
    child = element.find(name)
    return child.text.strip() if child is not None and child.text else None


def http_fetch(url: str) -> bytes:
    """GET ``url`` (https://, http:// or file://)."""
    request = urllib.request.Request(url, headers={"User-Agent": "streamlearn-pom-resolver"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
        return bytes(response.read())


class PomResolver:
    """Reads POMs from ``repo`` (cached in memory) and resolves runtime trees."""

    def __init__(self, repo: str = CENTRAL, fetch: Callable[[str], bytes] = http_fetch) -> None:
        self.repo = repo.rstrip("/")
        self.fetch = fetch
        self._raw: dict[tuple[str, str, str], ET.Element] = {}
        self._effective: dict[tuple[str, str, str], Pom] = {}

    # -- reading ------------------------------------------------------------
    def _xml(self, group: str, artifact: str, version: str) -> ET.Element:
        key = (group, artifact, version)
        if key not in self._raw:
            url = f"{self.repo}/{Artifact(group, artifact, version).path('pom')}"
            self._raw[key] = _strip_namespaces(ET.fromstring(self.fetch(url)))
        return self._raw[key]

    def prefetch(self, coordinates: Iterable[tuple[str, str, str]]) -> None:
        """Fetch several POMs in parallel (a tree level at a time)."""
        todo = [c for c in set(coordinates) if c not in self._raw]
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=8) as pool:
            for coordinate, data in zip(todo, pool.map(self._fetch_pom, todo), strict=True):
                self._raw.setdefault(coordinate, _strip_namespaces(ET.fromstring(data)))

    def _fetch_pom(self, coordinate: tuple[str, str, str]) -> bytes:
        return self.fetch(f"{self.repo}/{Artifact(*coordinate).path('pom')}")

    def pom(self, group: str, artifact: str, version: str) -> Pom:
        """The effective POM: parents merged, properties interpolated, imports applied."""
        key = (group, artifact, version)
        if key in self._effective:
            return self._effective[key]
        root = self._xml(group, artifact, version)
        parent_el = root.find("parent")
        parent: Pom | None = None
        if parent_el is not None:
            parent = self.pom(_text(parent_el, "groupId") or "",
                              _text(parent_el, "artifactId") or "",
                              _text(parent_el, "version") or "")
        pom = Pom(group, artifact, version)
        if parent is not None:
            pom.properties.update(parent.properties)
            pom.properties.update({"project.parent.version": parent.version,
                                   "project.parent.groupId": parent.group})
        for prop in root.find("properties") or []:
            if isinstance(prop.tag, str):
                pom.properties[prop.tag] = (prop.text or "").strip()
        pom.properties.update({
            "project.groupId": group, "project.artifactId": artifact,
            "project.version": version, "pom.version": version, "version": version,
            "pom.groupId": group, "groupId": group,
        })
        if parent is not None:
            pom.managed.update(parent.managed)
        managed_el = root.find("dependencyManagement/dependencies")
        for dep in self._dependencies(managed_el, pom.properties):
            if dep.scope == "import" and dep.type == "pom" and dep.version:
                bom = self.pom(dep.group, dep.artifact, dep.version)
                for bom_key, managed in bom.managed.items():
                    pom.managed.setdefault(bom_key, managed)
            else:
                pom.managed[dep.key] = dep
        declared: dict[tuple[str, str, str, str], Dependency] = {}
        if parent is not None:
            declared.update({dep.key: dep for dep in parent.dependencies})
        for dep in self._dependencies(root.find("dependencies"), pom.properties):
            declared[dep.key] = dep
        for dep_key, dep in declared.items():
            rule = pom.managed.get(dep_key)
            if rule is not None:
                declared[dep_key] = replace(dep, version=dep.version or rule.version,
                                            scope=dep.scope or rule.scope,
                                            exclusions=dep.exclusions | rule.exclusions)
        pom.dependencies = list(declared.values())
        self._effective[key] = pom
        return pom

    def _dependencies(self, parent: ET.Element | None, props: dict[str, str]) -> list[Dependency]:
        found: list[Dependency] = []
        for el in parent.findall("dependency") if parent is not None else []:
            def value(name: str, el: ET.Element = el) -> str | None:
                raw = _text(el, name)
                return _interpolate(raw, props) if raw is not None else None

            exclusions = frozenset(
                (_interpolate(_text(ex, "groupId") or "*", props),
                 _interpolate(_text(ex, "artifactId") or "*", props))
                for ex in el.findall("exclusions/exclusion"))
            found.append(Dependency(
                group=value("groupId") or "", artifact=value("artifactId") or "",
                version=value("version"), scope=value("scope"),
                classifier=value("classifier") or "", type=value("type") or "jar",
                optional=(value("optional") or "false").lower() == "true",
                exclusions=exclusions,
            ))
        return found

    # -- resolving ----------------------------------------------------------
    def resolve(self, roots: Iterable[Artifact]) -> list[Artifact]:
        """The runtime closure of ``roots`` (roots included), in breadth-first order."""
        level: list[tuple[Dependency, frozenset[tuple[str, str]], str]] = [
            (Dependency(a.group, a.artifact, a.version, "compile", a.classifier, "jar", False,
                        frozenset()), frozenset(), "compile")
            for a in roots
        ]
        chosen: dict[tuple[str, str, str, str], Artifact] = {}
        while level:
            self.prefetch((d.group, d.artifact, d.version or "") for d, _, _ in level
                          if d.key not in chosen)
            following: list[tuple[Dependency, frozenset[tuple[str, str]], str]] = []
            for dep, excluded, scope in level:
                if dep.key in chosen:
                    continue  # nearest wins; at equal depth, the first declared
                if not dep.version:
                    raise ValueError(f"no version for {dep.group}:{dep.artifact}")
                chosen[dep.key] = Artifact(dep.group, dep.artifact, dep.version, dep.classifier)
                pom = self.pom(dep.group, dep.artifact, dep.version)
                for child in pom.dependencies:
                    child_scope = child.scope or "compile"
                    if child_scope not in KEPT_SCOPES or child.optional or child.type != "jar":
                        continue
                    if _excluded(child, excluded):
                        continue
                    following.append((child, excluded | child.exclusions,
                                      "runtime" if "runtime" in (scope, child_scope)
                                      else "compile"))
            level = following
        return list(chosen.values())


def _excluded(dep: Dependency, exclusions: frozenset[tuple[str, str]]) -> bool:
    return any(group in ("*", dep.group) and artifact in ("*", dep.artifact)
               for group, artifact in exclusions)


_PROPERTY = re.compile(r"\$\{([^}]+)\}")


def _interpolate(text: str, props: dict[str, str]) -> str:
    for _ in range(10):  # properties may refer to properties
        new = _PROPERTY.sub(lambda m: props.get(m.group(1), m.group(0)), text)
        if new == text:
            break
        text = new
    return text
