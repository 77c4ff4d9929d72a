"""One private Kafka broker and one password-protected Redis for the chaos session.

Private because the tests kill, stop and restart them; shared by every chaos
test (each scenario has its own app, topics and Redis keys) because a broker
start costs a JVM boot on a 2-core machine.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Iterator

import pytest

from connectors.services.kafka_local import LocalKafka
from connectors.services.redis_local import LocalRedis
from tests.chaos.harness import LIVE, ChaosEnv


@pytest.fixture(scope="session")
def chaos_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosEnv]:
    root = tmp_path_factory.mktemp("chaos")
    password = "rp-" + secrets.token_hex(12)
    kafka = LocalKafka(
        state_dir=root / "kafka", port=0, controller_port=0,
        # Abort a dead worker's timed-out transaction within ~1 s of its timeout.
        extra_config={"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"},
    )
    redis = LocalRedis(state_dir=root / "redis", port=0, password=password)
    try:
        kafka.start()
        redis.start()
        yield ChaosEnv(kafka=kafka, redis=redis, root=root / "apps", redis_password=password,
                       checkpoint_secret="cs-" + secrets.token_hex(16))
    finally:
        kafka.stop()
        redis.stop()


#: How much of each driver's log a failed test's report shows (its end: the Coordinator's last decisions).
LOG_TAIL_CHARS = 12_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed chaos test shows the end of each of its drivers' logs.

    A timeout alone ("timed out waiting for X") does not say whether the
    Coordinator saw the death, chose another path, or never ran: its log
    lines do, and the scenario's files are gone with the CI machine.
    """
    report = yield
    if report.when != "call" or not report.failed:
        return report
    for sc in LIVE:
        for i, d in enumerate(sc.drivers):
            text = d.log()
            report.sections.append((f"driver log {sc.app} #{i} (last {LOG_TAIL_CHARS} characters)", text[-LOG_TAIL_CHARS:]))
    return report


@pytest.fixture(autouse=True)
def _no_leftover_drivers() -> Iterator[None]:
    """A failing chaos test must not leave its `streamlearn run` (and Ray) behind, nor its topics."""
    yield
    while LIVE:
        sc = LIVE.pop()
        sc.kill_leftovers()
        sc.delete_topics()
