"""Step 4 of the protocol against a scripted producer: offsets always go in before the commit."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException

from streamlearn.config import AppConfig
from streamlearn.eos.commit import Verdict, commit_transaction
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.task import PartitionTask
from streamlearn.state.checkpoint import ModelState


class ScriptedProducer:
    """Fails the calls named in `failures` once each, in order; records every call."""

    def __init__(self, failures: list[tuple[str, KafkaError]]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.failures and self.failures[0][0] == name:
            raise KafkaException(self.failures.pop(0)[1])

    def send_offsets_to_transaction(self, offsets: Any, meta: Any, timeout: float) -> None:
        self._maybe_fail("send_offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._maybe_fail("commit")

    def poll(self, timeout: float) -> int:
        if self.failures and self.failures[0][0] == "poll":  # a fenced producer raises its fatal error here
            raise KafkaException(self.failures.pop(0)[1])
        return 0  # no delivery reports: nothing was refused


class Consumer:
    def consumer_group_metadata(self) -> object:
        return object()


def task_with(producer: ScriptedProducer) -> PartitionTask:
    task = PartitionTask(AppConfig(), None, Consumer(), 0, "w0", b"k", None, True, 1)  # type: ignore[arg-type]
    task.ownership.producer = producer  # type: ignore[assignment]
    return task


def commit(producer: ScriptedProducer) -> Verdict:
    return commit_transaction(producer, Consumer(), "t", 0, 42, 60_000, Heartbeat(), lambda **more: more)  # type: ignore[arg-type]


def timed_out() -> KafkaError:
    return KafkaError(KafkaError._TIMED_OUT, "Failed to add offsets to transaction", retriable=True)


def test_retriable_send_offsets_failure_is_retried_before_commit() -> None:
    producer = ScriptedProducer([("send_offsets", timed_out())])
    assert commit(producer) is Verdict.COMMITTED
    assert producer.calls == ["send_offsets", "send_offsets", "commit"]


def test_retriable_commit_failure_retries_the_commit_only() -> None:
    producer = ScriptedProducer([("commit", KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True))])
    assert commit(producer) is Verdict.COMMITTED
    assert producer.calls == ["send_offsets", "commit", "commit"]


def test_abortable_failure_aborts_and_recovers() -> None:
    producer = ScriptedProducer([("commit", KafkaError(KafkaError._INCONSISTENT, "failed delivery", txn_requires_abort=True))])
    task = task_with(producer)
    task.state = ModelState(None, None, offset=42, model_version=0, events=0)
    task.batch.transaction = True
    recovered: list[bool] = []
    task.recover = lambda *, fatal: recovered.append(fatal)  # type: ignore[method-assign]
    assert not task.commit()
    assert recovered == [False]
    assert producer.calls == ["send_offsets", "commit"]
    assert task.committed_offset == 0  # nothing committed: the batch is the recovery's to restore


def test_fencing_re_owns() -> None:
    producer = ScriptedProducer([("send_offsets", KafkaError(KafkaError._FENCED, "fenced", fatal=True))])
    assert commit(producer) is Verdict.REOWN
    assert producer.calls == ["send_offsets"]


def test_fatal_error_raised_by_poll_re_owns_instead_of_failing_the_run() -> None:
    """librdkafka raises a fenced producer's fatal error from poll(), before the commit is tried.

    It must lead to the recovery (epoch check, compare-and-increment re-take), like a
    fenced commit; escaping, it failed the worker's whole run.
    """
    producer = ScriptedProducer([("poll", KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True))])
    task = task_with(producer)
    task.state = ModelState(None, None, offset=42, model_version=0, events=0)
    task.batch.transaction = True
    recovered: list[bool] = []
    task.recover = lambda *, fatal: recovered.append(fatal)  # type: ignore[method-assign]
    assert not task.commit()
    assert recovered == [True]
    assert producer.calls == []  # nothing tried on a producer that can never commit
