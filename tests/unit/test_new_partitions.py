"""Partitions added to the input topic while running go to a standby; no owned partition moves."""

from __future__ import annotations

from tests.unit.test_supervisor import Harness


def test_new_partitions_go_to_the_standby_and_a_new_standby_is_started() -> None:
    h = Harness(partitions=4, workers=2, standby=1)
    before = dict(h.view()["assignment"])
    h.sup.add_partitions([4, 5])
    view = h.view()
    assert view["assignment"] == {**before, "w2": [4, 5]}  # the owners keep theirs, untouched
    assert h.ray.runs("w2") == [[4, 5]] and view["standby"] == ["w3"]
    assert all(h.ray.runs(w) == [parts] for w, parts in before.items())  # no relaunch of an owner


def test_without_a_standby_a_new_worker_takes_them() -> None:
    h = Harness(partitions=2, workers=2, standby=0)
    h.sup.add_partitions([2])
    assert h.view()["assignment"]["w2"] == [2] and h.view()["standby"] == []
