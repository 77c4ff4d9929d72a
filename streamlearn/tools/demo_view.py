"""Terminal output of the demo: the live per-partition table and the final summary (rich)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamlearn.config import AppConfig


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


class LiveView:
    """Rich Live table on a terminal; a progress line every few seconds otherwise (CI, pipes)."""

    def __init__(self, console: Console, st: Any, cfg: AppConfig, metrics_url: str | None, plain: bool, plain_every_s: float = 5.0) -> None:
        self.console = console
        self.st = st
        self.cfg = cfg
        self.metrics_url = metrics_url
        self.plain = plain
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._live: Live | None = None
        self._t0 = time.monotonic()

    def __enter__(self) -> LiveView:
        if not self.plain:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(et, ev, tb)
            self._live = None

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self.console.print(self.line())

    def line(self) -> str:
        st = self.st
        t = st.last.get("totals", {})
        parts = " ".join(
            f"p{r['partition']}:{r['events']}ev/{r['lag']}lag/{_fmt(r['metric']['value'])}/v{r.get('served_version') or '-'}"
            for r in st.last.get("partitions", [])
        )
        return (f"[demo] produced {st.produced}/{st.total} events={t.get('events', 0)} eps={t.get('events_per_s', 0)} "
                f"lag={t.get('lag', 0)} dlq={t.get('dlq', 0)} recoveries={t.get('recoveries', 0)} | {parts}")

    def render(self) -> Group:
        st = self.st
        last = st.last
        t = last.get("totals", {})
        elapsed = time.monotonic() - self._t0
        if st.produce_started_at is None:
            stream = "waiting for every partition to be owned before streaming"
        elif st.producing_done:
            stream = f"all {st.produced} records produced; draining"
        else:
            drift = " · [magenta]drift has started[/]" if st.drift_produced_at else f" · drift at event {st.drift_at}"
            stream = f"producing {st.produced}/{st.total}{drift}"
        head = Text.from_markup(
            f"[bold]{self.cfg.app}[/] · {elapsed:5.0f}s · {stream}\n"
            f"total [bold]{t.get('events', 0)}[/] events · {t.get('events_per_s', 0):.0f} ev/s · lag {t.get('lag', 0)} · "
            f"dlq {t.get('dlq', 0)} · recoveries {t.get('recoveries', 0)}"
            + (f"\nmetrics {self.metrics_url}" if self.metrics_url else "")
        )
        table = Table(expand=False, header_style="bold")
        for col, just in (("part", "right"), ("owner", "left"), ("phase", "left"), ("events", "right"), ("ev/s", "right"),
                          ("lag", "right"), ("accuracy", "right"), ("checkpoint@offset (age)", "right"),
                          ("recoveries", "right"), ("dlq", "right"), ("served model", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in last.get("partitions", []):
            ck = "-" if r.get("checkpoint_offset") is None else f"{r['checkpoint_offset']} ({_fmt(r.get('checkpoint_age_s'), '.0f')}s)"
            table.add_row(
                str(r["partition"]), str(r.get("owner") or "-")[:22], r.get("phase", "-"), str(r["events"]),
                f"{r['events_per_s']:.0f}", str(r["lag"]), _fmt(r["metric"]["value"]), ck, str(r["recoveries"]), str(r["dlq"]),
                _served(r),
            )
        if not last.get("partitions"):
            table.add_row("-", "starting Ray and the workers ...", *[""] * 9)
        return Group(head, table, Text("Ctrl-C stops cleanly at any moment", style="dim"))


def _served(r: dict[str, Any]) -> str:
    """The version serving answers with, and how many the gate refused."""
    if r.get("served_version") is None:
        return "-"
    refused = sum((r.get("publish_refused") or {}).values())
    return f"v{r['served_version']}" + (f" ({refused} refused)" if refused else "")


def print_summary(console: Console, s: dict[str, Any]) -> None:
    console.rule("[bold]summary")
    if s["interrupted"]:
        console.print("[yellow]interrupted[/]: workers committed or aborted their transactions and wrote checkpoints")
    table = Table(header_style="bold")
    # accuracy: prequential (cumulative); pre-drift / post-drift: committed predictions vs labels
    for col in ("part", "events", "dlq", "accuracy", "pre-drift", "post-drift", "ckpt@", "recov"):
        table.add_column(col, justify="right")
    for p in s["partitions"]:
        table.add_row(str(p["partition"]), str(p["events"]), str(p["dlq"]), _fmt(p["prequential"]),
                      _fmt(p.get("accuracy_before_drift")), _fmt(p.get("accuracy_after_drift_last_1000")),
                      str(p["checkpoint_offset"]), str(p["recoveries"]))
    console.print(table)
    served = " ".join(f"p{p['partition']}:v{p.get('served_version')}" for p in s["partitions"] if p.get("served_version") is not None)
    if served:
        console.print(f"published model versions served: {served} (newest of each partition, gated)")
    console.print("accuracy: prequential, cumulative · pre-drift: committed predictions before the drift · "
                  "post-drift: last 1000 predictions after it · ckpt@: offset of the last checkpoint", style="dim")
    eo = s["exactly_once"]
    mark = "[green]ok[/]" if eo["ok"] else ("[yellow]not checked[/]" if eo["checked"] is False else "[red]FAILED[/]")
    console.print(f"events {s['events_processed']} predicted + {s['dlq']} dead-lettered of {s['records_produced']} produced "
                  f"in {s['run_seconds']:.0f}s ({s['throughput_eps']:.0f} ev/s while streaming)")
    if eo["checked"]:
        console.print(f"exactly once: {eo['predictions_read']} committed predictions + {eo['dead_letters']} dead letters for {eo['inputs']} records, "
                      f"{eo['duplicates']} duplicates, {eo['missing']} missing → {mark}")
    if s.get("producer_error"):
        console.print(f"[red]producer:[/] {s['producer_error']}")
    files = s.get("files", {})
    console.print(f"wrote {files.get('summary')} and {files.get('plot')}")
    cfg = files.get("config")
    console.print("next: look around this run with\n"
                  f"  .venv/bin/streamlearn status  -c {cfg}\n"
                  f"  .venv/bin/streamlearn consume -c {cfg} --max 5\n"
                  f"  .venv/bin/streamlearn consume -c {cfg} --dlq --max 3\n"
                  f"  .venv/bin/streamlearn models list -c {cfg}\n"
                  f"  .venv/bin/streamlearn serve -c {cfg} &   then: curl -s localhost:8000/predict -d '{{\"id\": \"demo-1\", \"features\": {{\"x0\": 0.5}}}}'\n"
                  "Kafka and Redis keep running for that; `.venv/bin/streamlearn services down` stops them.")
