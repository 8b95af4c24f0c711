"""The engine's events reach the UI through one subscription: woken once per burst, never polled."""

from __future__ import annotations

from collections.abc import Iterable

from wa_devtunnel.engine.events import EngineEvent, EventBus, Notice


def texts(events: Iterable[EngineEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, Notice)]


def test_a_burst_wakes_the_consumer_once_and_a_rearmed_one_again() -> None:
    bus = EventBus()
    wakes: list[int] = []
    events = bus.subscribe(wake=lambda: wakes.append(events.pending))
    for number in range(3):
        bus.publish(Notice("info", str(number)))
    assert wakes == [1], "the first event wakes the consumer; the next ones only queue"
    assert texts(events.take(2)) == ["0", "1"] and events.pending == 1
    assert not events.rearm(), "one is still waiting: take it before sleeping"
    assert texts(events.take(10)) == ["2"]
    assert events.rearm()
    bus.publish(Notice("info", "3"))
    assert wakes == [1, 1]


def test_a_consumer_that_comes_late_is_woken_for_what_waited() -> None:
    bus = EventBus()
    events = bus.subscribe()
    bus.publish(Notice("info", "before the UI"))
    wakes: list[int] = []
    events.wake_with(lambda: wakes.append(events.pending))
    assert wakes == [1]
    bus.publish(Notice("info", "no second wake-up until it rearms"))
    assert wakes == [1] and events.pending == 2


def test_closing_stops_delivery() -> None:
    bus = EventBus()
    events = bus.subscribe(wake=lambda: None)
    events.close()
    bus.publish(Notice("info", "gone"))
    assert events.pending == 0
