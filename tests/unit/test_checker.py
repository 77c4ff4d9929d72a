"""The shared exactly-once checker on hand-made messages: what counts as lost, duplicated, out of order."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from streamlearn.tools.checker import check_i1


@dataclass
class Msg:
    """The few confluent_kafka.Message methods the checker reads."""

    body: bytes
    at: int = 0
    hdrs: list[tuple[str, bytes]] = field(default_factory=list)

    def value(self) -> bytes:
        return self.body

    def offset(self) -> int:
        return self.at

    def headers(self) -> list[tuple[str, bytes]]:
        return self.hdrs


def _inputs(n: int) -> dict[int, list[Msg]]:
    return {0: [Msg(orjson.dumps({"id": f"e-{i}"}), at=i) for i in range(n)]}


def _out(offset: int, eid: str | None = None) -> Msg:
    return Msg(orjson.dumps({"id": eid or f"e-{offset}", "partition": 0, "offset": offset}))


def _dead(offset: int) -> Msg:
    return Msg(b"", hdrs=[("streamlearn.source.partition", b"0"), ("streamlearn.source.offset", str(offset).encode()),
                          ("streamlearn.error.code", b"invalid_json")])


def test_one_record_per_input_offset_is_ok() -> None:
    rep = check_i1(_inputs(3), {0: [_out(0), _out(2)]}, {0: [_dead(1)]})
    assert rep.ok and (rep.predictions, rep.dead_letters) == (2, 1) and rep.dlq_codes == {(0, 1): "invalid_json"}


def test_lost_duplicated_reordered_and_wrong_ids_are_reported() -> None:
    rep = check_i1(_inputs(4), {0: [_out(0), _out(2), _out(1), _out(1), _out(3, "other")]}, {})
    assert not rep.ok
    assert rep.duplicated == [(0, 1)] and rep.out_of_order == [(0, 1), (0, 1)] and rep.wrong_id == [(0, 3)]
    assert check_i1(_inputs(2), {0: [_out(0)]}, {}).missing == [(0, 1)]
