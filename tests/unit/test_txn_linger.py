"""The exactly-once producers' linger.ms follows the commit interval, within bounds."""

from __future__ import annotations

from streamlearn.eos.ownership import MAX_TXN_LINGER_MS, txn_linger_ms


def test_linger_is_the_commit_interval_within_bounds() -> None:
    assert txn_linger_ms(100) == 100  # a transaction's records wait for its commit anyway
    assert txn_linger_ms(1) == 5  # never below librdkafka's batching floor used before
    assert txn_linger_ms(600_000) == MAX_TXN_LINGER_MS  # a long interval does not hold records in the client for minutes
