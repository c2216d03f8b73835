"""The event grammar under stress: 10,000 events, a deliberately slow consumer (REQ-H13, REQ-H23).

The producer's side of delivery is an ``EventStream``: ``emit`` appends under a lock and returns, so
the queue between producer and consumer is the stream's list and nothing the consumer does can make
the producer wait. Two producers feed it 10,000+ events while a ``Coalescer`` hands them to a consumer
that sleeps on every delivery and works on every event: a thread emitting a scripted run, and a real
``Trainer`` run of 10,000 steps. Checked: every event arrives exactly once, in order, and passes the
``GrammarChecker``; deliveries stay within 30 a second; the backlog grew while the consumer slept (it
was slower than the producer); and the producer's time inside ``emit`` stays a bounded, small part of
its run, independent of the consumer.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from studio.backend.core.events import (
    EpochStats,
    Event,
    GrammarChecker,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepStats,
)
from studio.backend.core.requests import TrainConfig
from studio.backend.core.stats_delivery import Coalescer, EventStream
from studio.backend.pytorch.trainer import Trainer

EVENTS = 10_000


class SlowConsumer:
    """Sleeps ``pause_s`` on every delivery and ``per_event_s`` per event, checking the grammar as it goes."""

    def __init__(self, stream: EventStream, pause_s: float, per_event_s: float) -> None:
        self.stream, self.pause_s, self.per_event_s = stream, pause_s, per_event_s
        self.received: list[Event] = []
        self.checker = GrammarChecker()
        self.backlog: list[int] = []  # events waiting in the stream when each delivery began
        self.busy_s = 0.0

    def __call__(self, batch: list[Event]) -> None:
        started = time.perf_counter()
        self.backlog.append(len(batch) + len(self.stream))
        time.sleep(self.pause_s + self.per_event_s * len(batch))
        for event in batch:
            self.checker.feed(event)
        self.received.extend(batch)
        self.busy_s += time.perf_counter() - started


class TimedSink:
    """The producer's sink: emits into the stream and measures the time spent inside ``emit``."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.sent: list[Event] = []
        self.durations: list[float] = []

    def __call__(self, event: Event) -> None:
        started = time.perf_counter()
        self.stream.emit(event)
        self.durations.append(time.perf_counter() - started)
        self.sent.append(event)


def scripted_run(n: int) -> list[Event]:
    """A valid run of ``n`` steps: epochs of 1,000 steps, a pause and a resume in the middle."""
    events: list[Event] = [RunStarted("stress", "train", n // 1000, 1000)]
    for step in range(1, n + 1):
        events.append(StepStats("stress", step, (step - 1) // 1000, 1.0 / step, 32, 1e-3, 1e-4, 3e5))
        if step == n // 2:
            events += [RunPaused("stress", step), RunResumed("stress", step)]
        if step % 1000 == 0:
            events.append(EpochStats("stress", step // 1000 - 1, step, {"loss": 0.5}, {}, 1e-3, 0.1, 3e5))
    events.append(RunFinished("stress", n, n // 1000))
    return events


def _check_delivery(sink: TimedSink, consumer: SlowConsumer, coalescer: Coalescer, seconds: float) -> None:
    consumer.checker.finish()
    assert len(consumer.received) == len(sink.sent) >= EVENTS
    assert all(a is b for a, b in zip(consumer.received, sink.sent)), "an event was lost, duplicated or reordered"
    assert coalescer.deliveries <= 30 * seconds + 2
    assert max(consumer.backlog) > 1, "the consumer was never behind: it was not slow"


@pytest.mark.req("REQ-H13", "REQ-H23")
def test_ten_thousand_events_reach_a_slow_consumer_complete_and_in_order() -> None:
    stream: EventStream = EventStream()
    consumer = SlowConsumer(stream, pause_s=0.02, per_event_s=0.0002)  # 2 s of work for 10,000 events
    sink = TimedSink(stream)
    coalescer = Coalescer(stream, consumer)
    events = scripted_run(EVENTS)
    started = time.perf_counter()

    def produce() -> None:
        for event in events:
            sink(event)

    producer = threading.Thread(target=produce, name="stress-producer")
    producer.start()
    producer.join()
    produced_s = time.perf_counter() - started
    coalescer.close()  # delivers what is left
    total_s = time.perf_counter() - started
    _check_delivery(sink, consumer, coalescer, total_s)
    # the producer did not wait for the consumer: it finished its 10,000 emits well within the consumer's work
    assert produced_s < consumer.busy_s, (produced_s, consumer.busy_s)
    assert sum(sink.durations) < 0.25 * consumer.busy_s


@pytest.mark.req("REQ-H13", "REQ-H23", "REQ-T16")
def test_a_real_trainer_run_of_ten_thousand_steps_is_not_held_back_by_a_slow_consumer() -> None:
    torch.manual_seed(0)
    x = torch.randn(1000, 2)
    y = (x[:, 0] > 0).long()
    config = TrainConfig(epochs=EVENTS // 1000, batch_size=1, lr=0.01, optimizer="sgd")
    stream: EventStream = EventStream()
    consumer = SlowConsumer(stream, pause_s=0.03, per_event_s=0.0001)
    sink = TimedSink(stream)
    coalescer = Coalescer(stream, consumer)
    trainer = Trainer(torch.nn.Linear(2, 2), "classification", config, events=sink)
    started = time.perf_counter()
    result = trainer.fit((x, y))
    fit_s = time.perf_counter() - started
    coalescer.close()
    _check_delivery(sink, consumer, coalescer, time.perf_counter() - started)
    assert result.status == "finished" and result.steps == EVENTS
    steps = [e for e in consumer.received if isinstance(e, StepStats)]
    assert [e.step for e in steps] == list(range(1, EVENTS + 1))
    assert sum(isinstance(e, EpochStats) for e in consumer.received) == config.epochs
    # bounded cost per event: emitting is a small part of the run, however slow the consumer
    emit_s = sum(sink.durations)
    print(f"\n{len(sink.sent)} events in {fit_s:.2f} s of training; {emit_s * 1e3:.1f} ms inside emit "
          f"({emit_s / fit_s:.1%}); consumer busy {consumer.busy_s:.2f} s in {coalescer.deliveries} deliveries; "
          f"largest backlog {max(consumer.backlog)} events")
    assert emit_s < 0.1 * fit_s
    slow = sorted(sink.durations)[int(0.99 * len(sink.durations))]  # coupling would hit every delivery (~3%)
    assert slow < consumer.pause_s, f"emit waited like a delivery ({slow * 1e3:.1f} ms)"
