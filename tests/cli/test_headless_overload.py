"""Headless under overload: a printer fed faster than it can show coalesces exchanges into a count line
(text) or a `skipped` JSON line, never blocks the receiver on a slow stdout, and shows everything when
there is no overload. Clocks are fake: nothing here depends on the machine's speed."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

from wa_devtunnel.cli.headless import HeadlessPrinter
from wa_devtunnel.cli.headless_display import DisplayBudget, LineWriter, joined_runs
from wa_devtunnel.engine.events import ExchangeRecorded, ForwardCompleted, Notice
from wa_devtunnel.rules.samples import payloads

RECORDING = Path("/tmp/recordings/20260101-000000.jsonl")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def exchange(seq: int) -> ExchangeRecorded:
    body = json.dumps(payloads.text_message(f"hello {seq}"), separators=(",", ":"))
    record: dict[str, Any] = {
        "v": 1,
        "id": f"{seq:032x}",
        "seq": seq,
        "received_at": "2026-01-01T00:00:00.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], "body": body},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "valid",
        "origin": "meta",
        "summary": {"ok": True, "headline": f"messages: text hello {seq}", "flags": [], "items": []},
    }
    return ExchangeRecorded(None, record, seq * 100, RECORDING)


def written(runs: list[tuple[Any, str]], stream: Any) -> list[str]:
    return "".join(text for s, text in runs if s is stream).splitlines()


def test_without_overload_a_batch_prints_exactly_what_render_prints() -> None:
    events = [exchange(seq) for seq in range(1, 51)] + [Notice("warning", "careful")]
    one_by_one = io.StringIO()
    plain = HeadlessPrinter(one_by_one, io.StringIO(), json_lines=False)
    for event in events:
        plain.render(event)
    out, err = io.StringIO(), io.StringIO()
    batched = HeadlessPrinter(out, err, json_lines=False)
    runs = batched.render_batch(events, DisplayBudget(clock=FakeClock()))
    assert written(runs, out) == one_by_one.getvalue().splitlines()
    assert len(written(runs, out)) == 50
    assert written(runs, err) == ["[warning] careful"]
    assert out.getvalue() == ""  # nothing written by render_batch itself: the runs are the writer's


def test_a_printer_fed_faster_than_it_can_show_coalesces_and_says_so() -> None:
    clock = FakeClock()
    budget = DisplayBudget(rate=10, burst=20, clock=clock)
    out = io.StringIO()
    printer = HeadlessPrinter(out, io.StringIO(), json_lines=False)
    lines = written(printer.render_batch([exchange(seq) for seq in range(1, 101)], budget), out)
    assert len(lines) == 21  # the burst, each a normal line, then the count at once
    assert all("messages: text hello" in text for text in lines[:20])
    assert lines[20] == f"[overload] 80 exchange(s) not shown (#21-#100); answered and recorded, see {RECORDING}"
    clock.now += 0.5  # within the report interval: still counting, nothing said yet
    assert written(printer.render_batch([exchange(seq) for seq in range(101, 201)], budget), out) == []
    clock.now += 1.0  # a second since: the count is said even with nothing new to show
    lines = written(printer.render_batch([], budget), out)
    assert lines == [
        f"[overload] 100 exchange(s) not shown (#101-#200); answered and recorded, see {RECORDING}",
    ]
    clock.now += 10.0  # the flood is over: the budget refilled, exchanges show again
    lines = written(printer.render_batch([exchange(201), exchange(202)], budget), out)
    assert len(lines) == 2 and "hello 201" in lines[0] and "hello 202" in lines[1]


def test_the_count_is_said_before_the_next_exchange_shown_and_at_the_end() -> None:
    clock = FakeClock()
    budget = DisplayBudget(rate=10, burst=2, clock=clock)
    out = io.StringIO()
    printer = HeadlessPrinter(out, io.StringIO(), json_lines=False)
    printer.render_batch([exchange(seq) for seq in range(1, 6)], budget)  # says 3 not shown (#3-#5)
    clock.now += 0.1
    assert written(printer.render_batch([exchange(6)], budget), out) == []  # still coalescing
    clock.now += 5.0
    lines = written(printer.render_batch([exchange(7)], budget), out)
    assert lines[0].startswith("[overload] 1 exchange(s) not shown (#6);")
    assert "hello 7" in lines[1]
    printer.render_batch([exchange(8), exchange(9)], budget)  # 8 shown, 9 not: the last count was just said
    printer.render_batch([exchange(10)], budget)
    late = ForwardCompleted(exchange_id="x", seq=9, forward={"status": 200})
    final = written(printer.render_batch([late], budget, final=True), out)
    assert final == [
        f"[overload] 2 exchange(s) not shown (#9-#10), 1 late backend answer(s) not shown; answered and recorded,"
        f" see {RECORDING}"
    ]


def test_json_lines_stay_exact_json_under_overload_with_a_skipped_event() -> None:
    clock = FakeClock()
    budget = DisplayBudget(rate=10, burst=3, clock=clock)
    out = io.StringIO()
    printer = HeadlessPrinter(out, io.StringIO(), json_lines=True)
    runs = printer.render_batch([exchange(seq) for seq in range(1, 11)], budget, final=True)
    objects = [json.loads(text) for text in written(runs, out)]
    assert [o["event"] for o in objects] == ["exchange"] * 3 + ["skipped"]
    assert [o["seq"] for o in objects[:3]] == [1, 2, 3]
    assert objects[3] == {
        "event": "skipped",
        "count": 7,
        "first_seq": 4,
        "last_seq": 10,
        "forward_updates": 0,
        "recording": str(RECORDING),
    }


def test_other_events_are_always_rendered_while_coalescing() -> None:
    clock = FakeClock()
    budget = DisplayBudget(rate=1, burst=1, clock=clock)
    out, err = io.StringIO(), io.StringIO()
    printer = HeadlessPrinter(out, err, json_lines=False)
    runs = printer.render_batch([exchange(1), exchange(2), Notice("error", "disk full"), exchange(3)], budget)
    assert written(runs, err) == ["[error] disk full"]
    assert [text[:10] for text in written(runs, out)] == ["00:00:00  ", "[overload]"]


class StuckStream(io.StringIO):
    """A stdout whose reader stopped reading: write blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait()
        return super().write(text)


def test_a_stuck_stdout_blocks_only_the_writer_thread_and_the_display_coalesces() -> None:
    stream = StuckStream()
    writer = LineWriter()
    budget = DisplayBudget(rate=1e9, burst=10**9, clock=FakeClock(), behind=writer.behind)
    printer = HeadlessPrinter(stream, io.StringIO(), json_lines=False)
    writer.put(printer.render_batch([exchange(1)], budget))
    assert stream.entered.wait(10)  # the writer thread is stuck in write(); we are not
    writer.put([(stream, "x" * 300_000 + "\n")])  # more than the writer may fall behind
    assert writer.behind()
    runs = printer.render_batch([exchange(seq) for seq in range(2, 12)], budget)
    assert [text for _, text in runs] == [  # nothing formatted while the reader is behind, only the count
        f"[overload] 10 exchange(s) not shown (#2-#11); answered and recorded, see {RECORDING}\n"
    ]
    writer.put(runs)
    stream.release.set()
    assert writer.close(10)
    lines = stream.getvalue().splitlines()
    assert "hello 1" in lines[0] and lines[-1].startswith("[overload] 10 exchange(s)")


def test_joined_runs_keep_the_order_across_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    chunks = [(out, "a\n"), (out, "b\n"), (err, "c\n"), (out, "d\n")]
    assert joined_runs(chunks) == [(out, "a\nb\n"), (err, "c\n"), (out, "d\n")]


def test_a_batch_past_its_budget_spends_as_many_tokens_as_one_take_per_exchange() -> None:
    """render_batch stops asking the budget once it said no (one clock reading per batch): the tokens left,
    and so when exchanges show again, are what a take() per exchange would have left."""
    for size, refill in ((5, 0.2), (40, 0.5), (300, 3.0)):
        clock, reference_clock = FakeClock(), FakeClock()
        budget = DisplayBudget(rate=10, burst=20, clock=clock)
        reference = DisplayBudget(rate=10, burst=20, clock=reference_clock)
        printer = HeadlessPrinter(io.StringIO(), io.StringIO(), json_lines=False)
        for batch in range(3):
            events = [exchange(seq) for seq in range(batch * size + 1, (batch + 1) * size + 1)]
            printer.render_batch(events, budget)
            for _ in events:
                reference.take()
            assert (budget._tokens, budget.coalescing) == (reference._tokens, reference.coalescing), (size, batch)
            clock.now += refill
            reference_clock.now += refill


class Runs:
    """A LineWriter stand-in: the runs handed over, in order."""

    def __init__(self) -> None:
        self.runs: list[tuple[Any, str]] = []

    def put(self, runs: list[tuple[Any, str]]) -> None:
        self.runs.extend(runs)


async def test_while_the_display_coalesces_exchanges_are_counted_from_the_receiver_not_delivered() -> None:
    """A flood past the budget: the printer's subscription stops getting exchanges, each turn counts the ones
    the receiver answered meanwhile (its counters), and the line said is the one a delivered flood gives."""
    from types import SimpleNamespace

    from wa_devtunnel.cli.headless import HeadlessDisplay
    from wa_devtunnel.engine.events import EventBus

    def flood(first: int, last: int) -> None:
        for seq in range(first, last + 1):
            bus.publish(exchange(seq))
        service.exchanges, service.last_seq = last, last

    clock, out = FakeClock(), io.StringIO()
    bus = EventBus()
    service = SimpleNamespace(bus=bus, exchanges=0, last_seq=0, recorder=SimpleNamespace(path=RECORDING))
    subscription = bus.subscribe()
    writer = Runs()
    display = HeadlessDisplay(
        HeadlessPrinter(out, io.StringIO(), json_lines=False),
        service,  # type: ignore[arg-type]
        subscription,
        writer,  # type: ignore[arg-type]
        DisplayBudget(rate=10, burst=20, clock=clock),
    )
    flood(1, 30)
    display.render(await display.next_batch())
    assert display.counting and not subscription.exchanges  # the budget ran out: counting from now on
    lines = written(writer.runs, out)
    assert len(lines) == 21 and lines[-1].startswith("[overload] 10 exchange(s) not shown (#21-#30)")
    flood(31, 100)
    bus.publish(Notice("warning", "still delivered"))
    assert subscription.pending == 1  # the notice, none of the 70 exchanges
    clock.now += 0.5  # 5 tokens back, 70 arrivals spend them: still counting, nothing said yet
    display.render(await display.next_batch())
    assert display.counting and written(writer.runs, out)[-1].startswith("[overload] 10 ")
    flood(101, 120)
    clock.now += 1.5  # 15 tokens back, more than half the burst: counted, said, and delivery resumes
    display.render(await display.next_batch())
    lines = written(writer.runs, out)
    assert lines[-1] == f"[overload] 90 exchange(s) not shown (#31-#120); answered and recorded, see {RECORDING}"
    assert not display.counting and subscription.exchanges
    flood(121, 121)
    display.render(await display.next_batch())
    assert "hello 121" in written(writer.runs, out)[-1]
