"""Failed deliveries never let an offset move, permanent ones halt the partition, and transactions are time-bounded.

Scripted producers and stores stand in for Kafka and Redis here; the same
behaviour against the real broker is in tests/integration/test_delivery_failures.py.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from connectors.kafka_delivery import DeliveryReports, is_permanent
from connectors.redis_store import CasResult
from streamlearn.config import AppConfig
from streamlearn.eos import pacing
from streamlearn.eos.commit import Verdict, delivery_verdict, flush_and_record
from streamlearn.eos.emitter import VALUE_DROPPED_HEADER, emitters, input_offset
from streamlearn.eos.pacing import Pace
from streamlearn.eos.phase import Phase
from streamlearn.eos.task import PartitionTask
from streamlearn.model.codec import EventDecoder
from streamlearn.state.checkpoint import ModelState

TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")


class Msg:
    """What a delivery report carries (confluent_kafka.Message fits)."""

    def __init__(self, topic: str, value: bytes | None, key: bytes | None = None, headers: list[Any] | None = None) -> None:
        self._t, self._v, self._k, self._h = topic, value, key, headers

    def topic(self) -> str:
        return self._t

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes | None:
        return self._k

    def headers(self) -> list[Any] | None:
        return self._h

    def offset(self) -> int:
        return 0


def prediction(offset: int, pad: int = 0) -> bytes:
    return orjson.dumps({"id": "x" * pad, "prediction": True, "partition": 0, "offset": offset})


# ---- delivery reports -------------------------------------------------------------------
def test_reports_classify_and_name_the_largest_refused_message() -> None:
    reports = DeliveryReports(input_offset)
    reports(None, Msg("out", prediction(1)))  # success: nothing recorded
    reports(TOO_LARGE, Msg("out", prediction(7)))
    reports(TOO_LARGE, Msg("out", prediction(8, pad=5000)))  # the culprit: its batch-mates fail with it
    assert reports.failed == 2
    assert reports.permanent is not None and reports.permanent.offset == 8 and reports.permanent.code == "MSG_SIZE_TOO_LARGE"
    reports.clear()
    reports(KafkaError(KafkaError._PURGE_QUEUE), Msg("out", prediction(9)))  # purged by our own abort
    assert reports.failed == 0
    reports(KafkaError(KafkaError._MSG_TIMED_OUT), Msg("out", prediction(9)))
    assert reports.failed == 1 and reports.permanent is None  # transient: replay, not halt


@pytest.mark.parametrize(("code", "permanent"), [
    (KafkaError.MSG_SIZE_TOO_LARGE, True), (KafkaError.TOPIC_AUTHORIZATION_FAILED, True),
    (KafkaError._MSG_TIMED_OUT, False), (KafkaError._STATE, False), (KafkaError.PRODUCER_FENCED, False),
    (KafkaError._FATAL, False),  # the producer failed (fenced), not the message: re-own, never halt
    (KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, False),  # idempotence bookkeeping after timed-out requests
    (KafkaError.UNKNOWN_PRODUCER_ID, False),
])
def test_permanent_errors(code: int, permanent: bool) -> None:
    assert is_permanent(KafkaError(code)) is permanent


class FlushingProducer:
    """flush() returns 0 (nothing queued) whatever happened: librdkafka's contract, the trap of finding 1."""

    def __init__(self, on_flush: Any = None) -> None:
        self.on_flush = on_flush
        self.produced: list[tuple[str, Any, Any, dict[str, Any]]] = []
        self.aborted = 0

    def produce(self, topic: str, value: Any = None, key: Any = None, partition: int = -1, on_delivery: Any = None, **kw: Any) -> None:
        self.produced.append((topic, value, key, kw))

    def flush(self, timeout: float = 0) -> int:
        if self.on_flush is not None:
            self.on_flush()
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0

    def abort_transaction(self, timeout: float = 0) -> None:
        self.aborted += 1


class Store:
    def __init__(self) -> None:
        self.offsets: list[int] = []

    def commit_offset(self, partition: int, epoch: int, offset: int) -> CasResult:
        self.offsets.append(offset)
        return CasResult(True, 0, epoch)


def test_at_least_once_never_records_an_offset_past_a_failed_delivery() -> None:
    reports, store = DeliveryReports(input_offset), Store()
    producer = FlushingProducer(lambda: reports(TOO_LARGE, Msg("out", prediction(3))))
    assert flush_and_record(producer, store, reports, "in", 0, 1, 10) is Verdict.HALT  # type: ignore[arg-type]
    assert store.offsets == []
    reports.clear()
    producer.on_flush = lambda: reports(KafkaError(KafkaError._MSG_TIMED_OUT), Msg("out", prediction(3)))
    assert flush_and_record(producer, store, reports, "in", 0, 1, 10) is Verdict.ABORT  # type: ignore[arg-type]
    assert store.offsets == []
    reports.clear()
    producer.on_flush = None
    assert flush_and_record(producer, store, reports, "in", 0, 1, 10) is Verdict.COMMITTED  # type: ignore[arg-type]
    assert store.offsets == [10]


class Consumer:
    def __init__(self) -> None:
        self.paused: list[Any] = []

    def consumer_group_metadata(self) -> object:
        return object()

    def pause(self, tps: list[Any]) -> None:
        self.paused += tps


class TxnProducer(FlushingProducer):
    """A transaction whose commit fails the way librdkafka fails it after a refused message."""

    def __init__(self, reports: DeliveryReports) -> None:
        super().__init__()
        self.reports = reports
        self.commits = 0

    def send_offsets_to_transaction(self, *a: Any) -> None:
        pass

    def commit_transaction(self, timeout: float) -> None:
        self.commits += 1
        self.reports(TOO_LARGE, Msg("out", prediction(41)))
        raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "ProduceRequest failed", txn_requires_abort=True))


def test_exactly_once_permanent_failure_halts_the_partition_instead_of_replaying() -> None:
    consumer = Consumer()
    task = PartitionTask(AppConfig(), None, consumer, 0, "w0", b"k", None, True, 1)  # type: ignore[arg-type]
    producer = TxnProducer(task.deliveries)
    task.ownership.producer = producer  # type: ignore[assignment]
    task.state = ModelState(None, None, offset=42, model_version=0, events=0)
    task.batch.transaction = True
    task.recover = lambda *, fatal: pytest.fail("a permanent failure must not replay")  # type: ignore[method-assign]
    assert not task.commit()
    assert task.phase is Phase.FAILED and producer.aborted == 1 and producer.commits == 1
    assert task.error is not None and "offset 41" in task.error.message and "MSG_SIZE_TOO_LARGE" in task.error.message
    assert consumer.paused and task.committed_offset == 0
    assert task.process([Msg("in", b"{}")]) == []  # halted: nothing more is read or produced


# ---- dead letters that the DLQ cannot take ------------------------------------------------------
def test_dead_letter_over_the_dlq_limit_goes_without_its_value() -> None:
    producer = FlushingProducer()
    reports = DeliveryReports(input_offset)
    _emit, dead_letter = emitters(producer, "app", "in", 0, "out", "dlq", 0, lambda **m: m, reports, dlq_limit=10_000)  # type: ignore[arg-type]

    class Rec(Msg):
        def offset(self) -> int:
            return 5

    dead_letter(Rec("in", b"v" * 20_000, b"k"), "value_too_large", "too big")
    dead_letter(Rec("in", b"small", b"k"), "invalid_json", "bad")
    (_, big, key, big_kw), (_, small, _, small_kw) = producer.produced
    assert big is None and key == b"k" and (VALUE_DROPPED_HEADER, b"20000") in big_kw["headers"]
    assert small == b"small" and all(h[0] != VALUE_DROPPED_HEADER for h in small_kw["headers"])


# ---- time bound of a transaction --------------------------------------------------------------
def test_pace_measures_first_then_fills_the_budget() -> None:
    pace = Pace(budget_s=0.1, transaction_timeout_s=10.0, ctx=lambda **m: m)
    assert pace.chunk(5000, 0.0) == 1  # unknown speed: measure one event
    pace.observe(1, 0.00001)
    assert pace.chunk(5000, 0.0) == 5000  # fast model: the whole poll in one go
    slow = Pace(budget_s=0.1, transaction_timeout_s=10.0, ctx=lambda **m: m)
    slow.observe(1, 0.04)
    assert slow.chunk(5000, 0.0) == 2 and slow.chunk(5000, 0.09) == 1


def test_slow_model_step_is_warned_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    pace = Pace(budget_s=0.1, transaction_timeout_s=1.0, ctx=lambda **m: m, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger=pacing.log.name):
        pace.observe(1, 0.6)
        pace.observe(1, 0.6)
        now[0] = 61.0
        pace.observe(1, 0.6)
        pace.observe(10, 0.6)  # 60 ms an event: far from the timeout
    assert sum("slow_model_step" in r.getMessage() for r in caplog.records) == 2


class SlowModel:
    """Each prediction costs 40 ms of a fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def predict_proba_one(self, x: Any) -> dict[bool, float]:
        self.clock[0] += 0.04
        return {True: 0.6, False: 0.4}

    def predict_one(self, x: Any) -> bool:
        return True

    def learn_one(self, x: Any, y: Any) -> None:
        pass


class Metric:
    def update(self, y: Any, p: Any) -> None:
        pass


class Rec(Msg):
    def __init__(self, offset: int) -> None:
        super().__init__("in", orjson.dumps({"id": f"e{offset}", "features": {"a": 1.0}, "label": True}))
        self._o = offset

    def offset(self) -> int:
        return self._o


def slow_task(monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], Store, FlushingProducer, PartitionTask]:
    """A running at_least_once task whose model costs 40 ms of a fake clock per event; commit budget 100 ms."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cfg = AppConfig.model_validate({"processing": {"commit_interval_ms": 100, "guarantee": "at_least_once"}})
    decoder = EventDecoder(cfg.fields, is_classifier=True, is_multiclass=False, classes=None, max_value_bytes=1 << 20)
    store, producer = Store(), FlushingProducer()
    task = PartitionTask(cfg, store, Consumer(), 0, "w0", b"k", decoder, True, 1, shared_producer=producer)  # type: ignore[arg-type]
    task.state = ModelState(SlowModel(clock), Metric(), offset=0, model_version=0, events=0)
    task.phase = Phase.RUNNING
    return clock, store, producer, task


def test_a_slow_model_commits_early_instead_of_outliving_the_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, store, producer, task = slow_task(monkeypatch)
    assert task.state is not None
    left = task.process([Rec(i) for i in range(30)])
    assert left == [] and task.state.offset == 30 and len(producer.produced) == 30
    # 30 events × 40 ms = 1.2 s of model time: committed in batches that each fit the 100 ms budget (+ one event).
    assert len(store.offsets) >= 8, store.offsets
    assert all(b - a <= 4 for a, b in zip([0, *store.offsets], store.offsets, strict=False))
    # And a caller's deadline hands back what is left, for after the commits that came due meanwhile.
    clock[0] += 1.0
    left = task.process([Rec(i) for i in range(30, 60)], until=clock[0] + 0.2)
    assert 0 < len(left) < 30 and left[0].offset() == task.state.offset


def test_a_spent_budget_with_defer_commit_stops_for_the_loop_to_commit_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run loop's mode: no commit inside `process` (the loop would wait for the broker's round trips
    instead of processing the other partitions); the rest is handed back and the loop commits at its turn's end."""
    _, store, _, task = slow_task(monkeypatch)
    assert task.state is not None
    left = task.process([Rec(i) for i in range(30)], defer_commit=True)
    # The budget (100 ms) is spent within a few 40-ms events: processing stopped there, nothing committed.
    assert 0 < task.state.offset <= 4 and len(left) == 30 - task.state.offset and left[0].offset() == task.state.offset
    assert task.commit_wanted and task.batch.open and store.offsets == []
    assert task.start_commit() is True  # at_least_once concludes at once (exactly_once: in flight)
    assert not task.commit_wanted and not task.batch.open and store.offsets == [task.state.offset]


def test_a_failed_producer_re_owns_rather_than_halts_on_what_it_could_not_deliver() -> None:
    reports = DeliveryReports(input_offset)
    reports(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), Msg("out", prediction(7)))
    assert reports.permanent is not None
    assert delivery_verdict(reports, Verdict.ABORT) is Verdict.HALT  # a healthy producer was refused: halt
    assert delivery_verdict(reports, Verdict.REOWN) is Verdict.REOWN  # a fenced/failed one: a new producer retries
    assert delivery_verdict(reports, Verdict.COMMITTED) is Verdict.COMMITTED
