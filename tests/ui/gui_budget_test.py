"""The GUI thread's share of a run's time: frames and deliveries wait while it is spent (REQ-U02, REQ-U03)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.backend.core.events import StepStats
from studio.ui import gui_budget
from studio.ui.gui_budget import GuiBudget
from studio.ui.widgets.dashboard import Dashboard


class Clocks:
    """Wall and GUI-thread CPU clocks the test moves by hand."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu


@pytest.fixture
def clocks(monkeypatch) -> Clocks:  # noqa: ANN001
    fake = Clocks()
    monkeypatch.setattr(gui_budget, "time", fake)
    return fake


@pytest.mark.req("REQ-U02", "REQ-U03")
def test_the_budget_refuses_while_spent_until_it_is_full_again(clocks: Clocks) -> None:
    budget = GuiBudget(share=0.03, burst_s=0.003)
    assert budget.wait_s() == 0.0  # no run: nothing is limited
    budget.start()
    assert budget.wait_s() == 0.0  # a run starts with a full bucket: its first frame comes at once
    clocks.cpu += 0.009  # a frame costing 9 ms of GUI time
    clocks.wall += 0.010
    wait = budget.wait_s()
    # 9 ms spent, 3 ms held and 0.3 ms earned: 5.7 ms owed, then 3 ms to be full again, at 3% a second
    assert wait == pytest.approx((0.009 - 0.003 - 0.0003 + 0.003) / 0.03)
    clocks.wall += wait / 2
    assert budget.wait_s() == pytest.approx(wait / 2)  # paying the debt back is not enough ...
    clocks.wall += wait / 2
    assert budget.wait_s() == 0.0  # ... it waits until the bucket is full
    clocks.cpu += 0.001  # cheap actions spend from it without waiting
    assert budget.wait_s() == 0.0
    budget.stop()
    clocks.cpu += 1.0
    assert budget.wait_s() == 0.0  # the run ended: the last frame is drawn at once


@pytest.mark.req("REQ-U03")
def test_an_idle_spell_buys_no_burst_of_frames(clocks: Clocks) -> None:
    budget = GuiBudget(share=0.03, burst_s=0.003)
    budget.start()
    clocks.wall += 60.0  # a paused run: a minute of nothing
    assert budget.wait_s() == 0.0
    clocks.cpu += 0.010  # after it, one 10 ms frame spends the whole bucket and more
    assert budget.wait_s() == pytest.approx((0.010 - 0.003 + 0.003) / 0.03)


@pytest.mark.req("REQ-U03")
def test_a_share_outside_zero_to_one_is_refused() -> None:
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="share"):
            GuiBudget(share=share)


class Spent:
    """A budget that is spent (``wait`` seconds to go) or not, as the test says."""

    def __init__(self) -> None:
        self.wait = 0.0

    def wait_s(self) -> float:
        return self.wait


@pytest.mark.req("REQ-U03")
def test_a_frame_waits_while_the_budget_is_spent_and_the_last_points_still_appear(qtbot) -> None:  # noqa: ANN001
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.show()
    budget = Spent()
    dash.budget = budget  # type: ignore[assignment]
    dash.new_run("limited")
    steps = [StepStats("r", s, 0, 1.0 / s, 32, 1e-3, 1e-3, 3e4) for s in range(1, 51)]
    budget.wait = 0.5
    dash.feed(steps[:25])
    assert not dash.redraw()  # spent: no frame now ...
    assert dash.loss_chart.drawn_points("Run 1/train") == 0
    assert dash._pending.isActive() and 400 <= dash._pending.interval() <= 600  # ... one when it allows
    budget.wait = 0.0
    dash.feed(steps[25:])
    qtbot.waitUntil(lambda: dash.loss_chart.drawn_points("Run 1/train") == 50, timeout=2000)  # nothing lost
    x = dash.loss_chart._curves["Run 1/train"].xData
    assert np.array_equal(x, np.arange(1, 51))
