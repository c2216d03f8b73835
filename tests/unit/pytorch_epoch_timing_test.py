"""An epoch's duration, throughput and the terminal's time left measure the whole epoch: the data,
every step and the validation pass (issue 22, point 2: one slow step per epoch read as 314 µs).

A real trainer on a model whose forward sleeps: the sleeps are a floor the measured times must reach.
The bounds are lower bounds from the sleeps themselves, never an upper limit on speed.
"""

from __future__ import annotations

import io
import re
import time

import torch
from torch import nn

from studio.backend.core.events import EpochStats
from studio.backend.core.requests import TrainConfig
from studio.backend.pytorch.trainer import Trainer
from studio.cli.progress import LineProgress

SLEEP_S = 0.15


class SlowForward(nn.Module):
    """A linear model whose every forward call (training and validation) sleeps ``SLEEP_S``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(SLEEP_S)
        return self.fc(x)


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=gen), torch.randint(0, 2, (n,), generator=gen)


def _run(epochs: int) -> tuple[list[EpochStats], str]:
    events: list = []
    lines = io.StringIO()
    progress = LineProgress(lines, interval_s=1e9)

    def sink(event) -> None:
        events.append(event)
        progress(event)

    config = TrainConfig(epochs=epochs, batch_size=16, lr=0.01)
    # one training step (16 samples) and one validation batch per epoch: two slow forwards
    Trainer(SlowForward(), "classification", config, events=sink, seed=0).fit(_data(16), _data(8))
    return [e for e in events if isinstance(e, EpochStats)], lines.getvalue()


def test_an_epoch_of_one_slow_step_lasts_at_least_its_step_and_its_validation():
    epochs, _ = _run(epochs=1)
    (epoch,) = epochs
    assert epoch.duration_s >= 2 * SLEEP_S  # the step's forward and the validation's forward
    assert epoch.samples_per_s <= 16 / (2 * SLEEP_S)  # 16 training samples over the whole epoch


def test_the_printed_time_left_counts_the_epochs_still_to_run_at_their_real_length():
    epochs, text = _run(epochs=3)
    first = next(line for line in text.splitlines() if line.startswith("epoch 1/3"))
    eta = re.search(r"ETA ([\d.]+) (ms|s|µs)", first)
    assert eta is not None, first
    seconds = float(eta.group(1)) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6}[eta.group(2)]
    assert seconds >= 2 * (2 * SLEEP_S) * 0.95  # two epochs left, each at least two slow forwards (display rounding)
    assert all(e.duration_s >= 2 * SLEEP_S for e in epochs)


def test_a_pause_is_not_counted_in_the_epochs_time():
    import threading

    from studio.backend.core.events import RunPaused, RunStarted
    from studio.backend.core.handler import RunControl

    pause_s = 2.0
    control = RunControl()
    events: list = []

    def sink(event) -> None:
        events.append(event)
        if isinstance(event, RunStarted):  # paused before the first step, resumed 2 s later
            control.pause()
            threading.Timer(pause_s, control.resume).start()

    started = time.perf_counter()
    Trainer(nn.Linear(4, 2), "classification", TrainConfig(epochs=1, batch_size=16), events=sink, control=control,
            seed=0).fit(_data(16))
    assert time.perf_counter() - started >= pause_s and any(isinstance(e, RunPaused) for e in events)
    (epoch,) = [e for e in events if isinstance(e, EpochStats)]
    assert epoch.duration_s < pause_s  # one step of a tiny linear model, without the 2 s it stood paused
