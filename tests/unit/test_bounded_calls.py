"""A transactional call that outlives librdkafka's own timeout gives its producer up (REOWN), not the loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamlearn.eos.bounded import BoundedCalls, CallStuck
from streamlearn.eos.commit import Verdict, commit_transaction
from streamlearn.eos.heartbeat import Heartbeat
from tests.unit.test_commit_sequence import Consumer


def test_a_call_returns_its_value_and_raises_its_error_on_the_caller() -> None:
    calls = BoundedCalls(grace_s=5.0)
    assert calls.run(lambda a, timeout: (a, timeout), 1.0, "x") == ("x", 1.0)

    def refused(timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._FENCED))

    with pytest.raises(KafkaException):
        calls.run(refused, 1.0)
    assert not calls.stuck
    calls.close()


class StuckProducer:
    """commit_transaction ignores its timeout and blocks until released (what librdkafka 2.12.1 did in CI)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []

    def send_offsets_to_transaction(self, offsets: Any, meta: Any, timeout: float) -> None:
        self.calls.append("send_offsets")

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")
        self.release.wait(60)

    def poll(self, timeout: float) -> int:
        raise AssertionError("a producer whose call is stuck must not be called again")


def test_a_commit_stuck_past_its_timeout_gives_the_producer_up() -> None:
    producer, calls, logged = StuckProducer(), BoundedCalls(grace_s=0.2), []
    try:
        verdict = commit_transaction(producer, Consumer(), "t", 0, 42, 100, Heartbeat(),  # type: ignore[arg-type]
                                     lambda **more: logged.append(more) or more, calls=calls)
        assert verdict is Verdict.REOWN and calls.stuck
        assert producer.calls == ["send_offsets", "commit"]  # not retried on the stuck producer
        with pytest.raises(CallStuck):
            calls.run(producer.commit_transaction, 0.1)  # nothing more goes to it
        assert producer.calls == ["send_offsets", "commit"]
        assert logged and logged[-1]["step"] == "commit" and "still blocked" in logged[-1]["reason"]
    finally:
        producer.release.set()
        calls.close()


class NoFlush:
    def flush(self, timeout: float) -> int:
        raise AssertionError("a producer whose call is stuck is not flushed: that would block the loop too")


def test_a_given_up_producer_is_dropped_without_a_flush() -> None:
    from streamlearn.config import load_config
    from streamlearn.eos import ownership

    owner = ownership.Ownership(load_config(environ={}), None, 0, "w0", Heartbeat())  # type: ignore[arg-type]
    owner.producer = NoFlush()  # type: ignore[assignment]
    owner.calls.stuck = True
    owner.close()
    assert owner.producer is None


class BlocksForever:
    def __init__(self) -> None:
        self.release = threading.Event()

    def abort_transaction(self, timeout: float) -> None:
        self.release.wait(60)

    def init_transactions(self, timeout: float) -> None:
        self.release.wait(60)


def test_a_stuck_abort_counts_as_failed_and_a_stuck_init_fails_the_take(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlearn.config import load_config
    from streamlearn.eos import ownership

    class Store:
        def take_epoch(self, *a: Any, **k: Any) -> Any:
            from connectors.redis_store import CasResult
            return CasResult(True, 0, 2)

    stuck = BlocksForever()
    monkeypatch.setattr(ownership, "TXN_TIMEOUT_S", 0.1)
    monkeypatch.setattr(ownership.kafka_io, "make_transactional_producer", lambda *a, **k: stuck)
    monkeypatch.setattr(ownership, "BoundedCalls", lambda: BoundedCalls(grace_s=0.1))
    owner = ownership.Ownership(load_config(environ={}), Store(), 0, "w0", Heartbeat())  # type: ignore[arg-type]
    try:
        owner.producer, owner.calls = stuck, BoundedCalls(grace_s=0.1)  # type: ignore[assignment]
        assert owner.abort() is False and owner.calls.stuck  # recover() then re-owns with a new producer
        with pytest.raises(CallStuck, match="init_transactions"):
            owner.take()
        assert owner.calls.stuck
    finally:
        stuck.release.set()
