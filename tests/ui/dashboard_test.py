"""The live dashboard: coalesced, bounded and fast; runs compared; charts saved as PNG (REQ-U03, REQ-U15)."""

from __future__ import annotations

import itertools
import pathlib
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmapCache
from PySide6.QtWidgets import QFileDialog, QGraphicsItem
from ui_helpers import wait_idle, wait_run

from studio.backend.core.events import EpochStats, RunFinished, RunStarted, StepStats
from studio.backend.core.results import TrainResult
from studio.ui.run_bridge import RunBridge
from studio.ui.widgets.dashboard import Dashboard


def _steps(start: int, n: int, epoch: int = 0) -> list[StepStats]:
    return [StepStats("r", s, epoch, 1.0 / (1 + s) + 0.01 * np.sin(s), 32, 1e-3, 1e-4, 1e5)
            for s in range(start, start + n)]


@pytest.mark.req("REQ-U03")
def test_a_million_steps_stay_bounded_and_draw_from_first_to_last_step(qtbot) -> None:
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.resize(1000, 600)
    dash.show()
    qtbot.waitExposed(dash)
    dash.new_run("stress")
    chart = dash.loss_chart
    name = "Run 1/train"
    capacity = chart.capacity
    x = np.arange(1, 1_000_001, dtype=np.float64)
    y = 1.0 / np.sqrt(x) + 0.05 * np.sin(x / 50.0)
    for lo in range(0, 1_000_000, 50_000):  # a million step records in 20 deliveries
        chart.add_points(name, x[lo:lo + 50_000], y[lo:lo + 50_000])
        chart.redraw()
        chart.viewport().repaint()  # a whole frame, synchronously (its time is benchmarks/gui.py's plot_frame_ms_1m)
    assert chart.point_count(name) == 1_000_000
    assert chart.drawn_points(name) <= 2 * capacity  # min/max buckets, not a million points
    drawn_x = chart._curves[name].xData
    assert drawn_x[0] == 1 and drawn_x[-1] == 1_000_000  # the whole run, first to last step


@pytest.mark.req("REQ-U03", "REQ-U15")
def test_the_legend_is_set_before_a_run_and_never_laid_out_while_it_draws(qtbot) -> None:
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.show()
    assert dash.loss_chart.legend_labels() == []  # nothing drawn, nothing to explain
    dash.new_run("no validation", validation=False)
    assert dash.loss_chart.legend_labels() == ["training", "Run 1"]  # no validation: no dashed key
    assert dash.metric_chart.legend_labels() == ["training", "Run 1"]
    entries = list(dash.loss_chart.legend.items)
    for start in range(1, 400, 20):  # a run's deliveries and frames
        dash.feed(_steps(start, 20) + [EpochStats("r", start // 20, start + 19, {"loss": 0.3, "accuracy": 0.8}, {},
                                                  1e-3, 0.1, 3e4)])
        dash.redraw()
    assert dash.loss_chart.legend.items == entries  # the same entry objects: no layout during the run
    assert dash.count("Loss", "train") == 400
    dash.end_run()
    dash.new_run("with validation")
    assert dash.loss_chart.legend_labels() == ["training", "validation", "Run 1", "Run 2"]


@pytest.mark.req("REQ-U15")
def test_a_run_that_drew_no_validation_curve_leaves_no_validation_key(dash: Dashboard) -> None:
    dash.new_run("validation asked for, none came")  # e.g. a split too small to hold a sample
    assert "validation" in dash.loss_chart.legend_labels()
    dash.feed(_steps(1, 10))
    dash.end_run()
    assert dash.loss_chart.legend_labels() == ["training", "Run 1"]


@pytest.mark.req("REQ-U15")
def test_a_legend_of_many_runs_names_the_recent_ones_and_stays_small(dash: Dashboard) -> None:
    for k in range(12):
        _finished_run(dash, f"run {k}", 2.0 + k)
    labels = dash.loss_chart.legend_labels()
    assert labels == ["training", "validation", *[f"Run {k}" for k in range(7, 13)], "+6 earlier"]
    legend = dash.loss_chart.legend.sceneBoundingRect()
    view = dash.loss_chart.getPlotItem().getViewBox().sceneBoundingRect()
    assert view.contains(legend) and legend.height() < 0.6 * view.height()  # it never runs off the chart
    dash.set_run_visible("Run 12", False)
    assert dash.loss_chart.legend_labels()[-2:] == ["Run 11", "+5 earlier"]  # hidden runs are not named
    dash.continue_run("Run 2")  # Train more on an early run: the legend names it while it draws
    assert "Run 2" in dash.loss_chart.legend_labels()
    for k in range(1, 13):
        dash.set_run_visible(f"Run {k}", False)
    assert dash.loss_chart.legend_labels() == []


@pytest.mark.req("REQ-U03")
def test_events_reach_the_dashboard_at_most_30_times_a_second(qtbot) -> None:
    bridge = RunBridge()
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.show()
    dash.new_run("flood")
    received = []

    def flood(request, *, events, control):  # noqa: ANN001, ANN202 - a handler emitting as fast as it can
        events(RunStarted("r", "train", 1, 200_000))
        step, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.5:
            for event in _steps(step + 1, 500):
                events(event)
            step += 500
        events(EpochStats("r", 0, step, {"loss": 0.5, "accuracy": 0.8}, {"loss": 0.6, "accuracy": 0.7}, 1e-3, 1.5, 1e5))
        events(RunFinished("r", step, 1))
        return step

    def on_events(batch: list) -> None:
        received.append(len(batch))
        dash.feed(batch)
        dash.redraw()

    bridge.events.connect(on_events)
    started = time.perf_counter()
    with qtbot.waitSignal(bridge.finished, timeout=60_000) as done:
        bridge.start(flood, None)
    seconds = time.perf_counter() - started
    steps = done.args[0]
    assert sum(received) == steps + 3  # nothing lost, nothing duplicated
    assert len(received) <= 30 * seconds + 2  # coalesced: at most 30 deliveries a second
    assert dash.frames <= 30 * seconds + 2
    assert dash.count("Loss", "train") == steps and dash.count("Loss", "val") == 1
    dash.redraw(force=True)
    assert dash.loss_chart.drawn_points("Run 1/train") <= 2 * dash.loss_chart.capacity


def _finished_run(dash: Dashboard, label: str, loss_scale: float) -> None:
    dash.new_run(label)
    batch: list = [RunStarted("r", "train", 2, 10)]
    for epoch in range(2):
        batch += [StepStats("r", s, epoch, loss_scale / s, 32, 1e-3, 1e-3, 3e4) for s in range(1 + 10 * epoch, 11 + 10 * epoch)]
        batch.append(EpochStats("r", epoch, 10 * (epoch + 1), {"loss": loss_scale / 10, "accuracy": 0.5 + 0.1 * epoch},
                                {"loss": loss_scale / 8, "accuracy": 0.45 + 0.1 * epoch}, 1e-3, 0.1, 3e4))
    dash.feed(batch)
    dash.end_run()


@pytest.mark.req("REQ-U15")
def test_runs_overlay_with_a_legend_and_unticking_a_run_hides_it(qtbot) -> None:
    dash = Dashboard()
    qtbot.addWidget(dash)
    dash.show()
    _finished_run(dash, "mlp on digits", 2.0)
    _finished_run(dash, "linear on digits", 3.0)
    assert dash.metric_chart.legend_labels() == ["training", "validation", "Run 1", "Run 2"]
    assert dash.lr_chart.series_names() == ["Run 1/lr", "Run 2/lr"]  # coloured as in the run list
    pens = {dash.loss_chart._curves[f"Run {i}/train"].opts["pen"].color().name() for i in (1, 2)}
    assert len(pens) == 2  # each run its own colour
    item = dash.runs["Run 1"].item
    item.setCheckState(Qt.CheckState.Unchecked)  # as a click on its box does
    assert dash.visible_runs() == ["Run 2"]
    assert not dash.loss_chart._curves["Run 1/train"].isVisible()
    assert dash.loss_chart.legend_labels() == ["training", "validation", "Run 2"]
    item.setCheckState(Qt.CheckState.Checked)
    assert dash.loss_chart._curves["Run 1/train"].isVisible() and len(dash.loss_chart.legend_labels()) == 4
    item.setCheckState(Qt.CheckState.Unchecked)
    dash.remove_hidden_runs()
    assert list(dash.runs) == ["Run 2"] and "Run 1/train" not in dash.loss_chart.series_names()


@pytest.fixture
def dash(qtbot) -> Dashboard:  # noqa: ANN001
    """A shown 1000 x 600 dashboard, closed after the test."""
    board = Dashboard()
    qtbot.addWidget(board)
    board.resize(1000, 600)
    board.show()
    return board


@pytest.mark.req("REQ-U15")
def test_earlier_runs_recede_thin_and_cached_while_the_current_run_draws_bold(dash: Dashboard) -> None:
    for k in range(3):
        _finished_run(dash, f"run {k}", 2.0 + k)
    chart = dash.loss_chart
    assert [chart.series_width(f"Run {k}/train") for k in (1, 2, 3)] == [1, 1, 2]
    assert chart.series_width("Run 3/val") == 2 and chart.series_width("Run 1/val") == 1
    cached = QGraphicsItem.CacheMode.DeviceCoordinateCache
    assert chart._curves["Run 1/train"].curve.cacheMode() == cached
    assert chart._curves["Run 3/train"].curve.cacheMode() != cached  # it changes every frame
    legend_pens = {label.text: sample.item.opts["pen"].widthF() for sample, label in chart.legend.items}
    assert [legend_pens[f"Run {k}"] for k in (1, 2, 3)] == [1, 1, 2]  # the legend shows each run as it is drawn
    dash.continue_run("Run 1")  # Train more on the first run: it comes forward, the others recede
    assert [chart.series_width(f"Run {k}/train") for k in (1, 2, 3)] == [2, 1, 1]
    assert chart._curves["Run 1/train"].curve.cacheMode() != cached
    legend_pens = {label.text: sample.item.opts["pen"].widthF() for sample, label in chart.legend.items}
    assert [legend_pens[f"Run {k}"] for k in (1, 2, 3)] == [2, 1, 1]


@pytest.mark.req("REQ-U03")
def test_epoch_and_step_axes_count_in_whole_numbers(dash: Dashboard) -> None:
    _finished_run(dash, "two epochs", 2.0)
    for chart in (dash.metric_chart, dash.loss_chart):
        axis = chart.getPlotItem().getAxis("bottom")
        for lo, hi in ((0.0, 2.05), (0.0, 3.2), (0.6, 1.4), (0.0, 200.0)):
            ticks = [v for _, values in axis.tickValues(lo, hi, 400) for v in values]
            assert ticks and all(v == int(v) for v in ticks), (chart, lo, hi, ticks)
    samples_axis = dash.throughput_chart.getPlotItem().getAxis("left")  # values, not counts: as usual
    assert any(v != int(v) for _, values in samples_axis.tickValues(0.0, 2.0, 400) for v in values)


@pytest.mark.req("REQ-U15")
def test_only_the_curves_that_fit_the_pixmap_cache_are_cached(dash: Dashboard) -> None:
    """Caching more curves than Qt's pixmap cache holds evicts one per paint: every frame redraws all."""
    for k in range(40):
        _finished_run(dash, f"run {k}", 2.0)
    chart = dash.loss_chart
    chart.recede_series()
    modes = [chart._curves[name].curve.cacheMode() for name in chart.series_names()]
    cached = modes.count(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    curve_kb = chart.width() * chart.height() * chart.devicePixelRatioF() ** 2 * 4 / 1024
    assert 0 < cached < len(modes) and cached * curve_kb <= QPixmapCache.cacheLimit() / 4
    assert all(m == QGraphicsItem.CacheMode.DeviceCoordinateCache for m in modes[-cached:])  # the most recent


@pytest.mark.req("REQ-U03")
def test_a_falling_loss_moves_the_axes_in_few_round_steps(dash: Dashboard) -> None:
    """Every change of range repaints axes and grid; a loss falling over 100 frames changes it a few times."""
    dash.new_run("falling")
    chart, ranges = dash.loss_chart, []
    for frame in range(100):
        steps = range(1 + 26 * frame, 27 + 26 * frame)
        dash.feed([StepStats("r", s, 0, 0.3 + 0.4 * np.exp(-s / 800), 32, 1e-3, 1e-3, 3e4) for s in steps])
        chart.redraw()  # one live frame of this chart (it follows the data)
        ranges.append(tuple(map(tuple, chart.getPlotItem().getViewBox().viewRange())))
    y_changes = sum(a[1] != b[1] for a, b in itertools.pairwise(ranges))
    assert y_changes <= 12
    (_, _), (y0, y1) = ranges[-1]
    assert y0 <= 0.3 + 0.4 * np.exp(-2600 / 800) and y1 >= 0.7 and y1 - y0 < 0.8  # all of it, and not much more


@pytest.mark.req("REQ-U03")
def test_the_step_axis_grows_towards_the_runs_planned_end_in_halvings(dash: Dashboard) -> None:
    """A run of 100 epochs of 26 steps: its view doubles a few times and ends on the planned last step."""
    dash.new_run("planned")
    chart, ends, shares = dash.loss_chart, [], []
    for frame in range(100):
        batch: list = [RunStarted("r", "train", 100, 26)] if frame == 0 else []
        batch += [StepStats("r", s, frame, 1.0 / s, 32, 1e-3, 1e-3, 3e4) for s in range(1 + 26 * frame, 27 + 26 * frame)]
        dash.feed(batch)
        chart.redraw()
        (x0, x1), _ = chart.getPlotItem().getViewBox().viewRange()
        ends.append(x1)
        shares.append(26 * (frame + 1) / x1)
    changes = sum(a != b for a, b in itertools.pairwise(ends))
    assert changes <= 7  # 2600 / 2**k: 40.6, 81, 162, 325, 650, 1300, 2600 (a round ceiling: 17 times)
    assert ends[-1] == 2600 and all(0.4 <= share <= 1.0 for share in shares)  # the curve always fills much of it
    dash.end_run()
    dash.new_run("same plan")  # a second run of the same length keeps the view the first one left
    fitted = chart.getPlotItem().getViewBox().viewRange()[0]
    dash.feed([RunStarted("r", "train", 100, 26), *_steps(1, 26)])
    chart.redraw()
    assert chart.getPlotItem().getViewBox().viewRange()[0] == fitted


@pytest.mark.req("REQ-U15")
def test_two_real_runs_are_compared_and_a_chart_saves_as_png(window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    window.epochs.setValue(1)
    for _ in range(2):
        window.start_training()
        wait_run(window, qtbot)
        assert isinstance(window.last_result, TrainResult)
    dash = window.train_area.dashboard
    assert list(dash.runs) == ["Run 1", "Run 2"]
    assert "1 epochs" in dash.runs["Run 2"].item.text() and "val accuracy" in dash.runs["Run 2"].item.text()
    assert dash.loss_chart.legend_labels() == ["training", "validation", "Run 1", "Run 2"]
    target = tmp_path / "loss.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG pictures (*.png)"))
    dash.chart_choice.setCurrentText("Loss")
    qtbot.mouseClick(dash.export_button, Qt.MouseButton.LeftButton)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(target))
    view = dash.loss_chart.getPlotItem().sceneBoundingRect()
    assert (image.width(), image.height()) == (round(view.width()), round(view.height()))


@pytest.mark.req("REQ-U15")
def test_forgetting_hidden_runs_frees_their_models_but_not_one_in_use(window, qtbot) -> None:
    from studio.backend.pytorch.model_store import store

    window.epochs.setValue(1)
    models = []
    for _ in range(3):
        window.start_training()
        wait_run(window, qtbot)
        models.append(window.last_result.model)
    wait_idle(window, qtbot)
    dash = window.train_area.dashboard
    assert [dash.runs[k].models for k in dash.runs] == [[m] for m in models]
    assert all(m in store for m in models)
    dash.runs["Run 2"].item.setCheckState(Qt.CheckState.Unchecked)  # as a person unticks it in the list
    qtbot.mouseClick(dash.clear_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert list(dash.runs) == ["Run 1", "Run 3"] and dash.runs_list.count() == 2
    assert models[1] not in store and models[0] in store and models[2] in store
    assert not any(name.startswith("Run 2/") for name in dash.loss_chart.series_names())
    # the newest run's model is still shown by Evaluate and Export and extended by Train more: kept
    for key in list(dash.runs):
        dash.runs[key].item.setCheckState(Qt.CheckState.Unchecked)
    qtbot.mouseClick(dash.clear_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert dash.runs == {} and models[0] not in store and models[2] in store
    assert window.state.trained_model.handle == models[2] and window.banner.text() == ""


def _deliveries(qtbot, receiver_cpu_s: float) -> tuple[list[int], int, float]:  # noqa: ANN001
    """Batch sizes a receiver costing ``receiver_cpu_s`` of GUI time per batch gets from a steady 1.2 s run."""
    bridge = RunBridge()
    received: list[int] = []

    def steady(request, *, events, control):  # noqa: ANN001, ANN202 - a step every 0.2 ms, as a fast run
        events(RunStarted("r", "train", 1, 100_000))
        step, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.2:
            step += 1
            events(_steps(step, 1)[0])
            time.sleep(0.0002)
        events(RunFinished("r", step, 1))
        return step

    def on_events(batch: list) -> None:
        received.append(len(batch))
        busy = time.thread_time() + receiver_cpu_s
        while time.thread_time() < busy:
            pass

    bridge.events.connect(on_events)
    started = time.perf_counter()
    with qtbot.waitSignal(bridge.finished, timeout=60_000) as done:
        bridge.start(steady, None)
    return received, done.args[0], time.perf_counter() - started


@pytest.mark.req("REQ-U03", "REQ-H23")
def test_costly_deliveries_keep_to_the_gui_share_in_larger_batches_and_none_is_lost(qtbot) -> None:
    from studio.ui.gui_budget import GUI_SHARE
    from studio.ui.run_bridge import SLOWEST_DELIVERY_S

    costly, steps, seconds = _deliveries(qtbot, 0.004)
    assert sum(costly) == steps + 2
    # 4 ms of GUI time each, within the run's 3% share: about one delivery per 133 ms, not 30 a second
    assert len(costly) <= seconds * GUI_SHARE / 0.004 + 3
    assert len(costly) >= seconds / SLOWEST_DELIVERY_S - 2  # yet at least four a second: the progress stays live
    cheap, steps, seconds = _deliveries(qtbot, 0.0)
    assert sum(cheap) == steps + 2
    assert len(cheap) >= 5 * seconds  # a cheap receiver keeps getting live updates


@pytest.mark.req("REQ-U03")
def test_an_accuracy_axis_stops_at_one_and_a_loss_axis_does_not(dash: Dashboard) -> None:
    dash.new_run("near perfect")
    batch: list = [RunStarted("r", "train", 5, 10)]
    for epoch in range(5):
        accuracy = 0.95 + 0.01 * epoch  # up to 0.99
        batch.append(EpochStats("r", epoch, 10 * (epoch + 1), {"loss": 0.9 - 0.1 * epoch, "accuracy": accuracy},
                                {"loss": 0.95 - 0.1 * epoch, "accuracy": accuracy - 0.01}, 1e-3, 0.1, 3e4))
    dash.feed(batch)
    dash.redraw(force=True)
    (_, _), (_, top) = dash.metric_chart.getPlotItem().getViewBox().viewRange()
    assert 0.99 <= top <= 1.0
    (_, _), (_, loss_top) = dash.loss_chart.getPlotItem().getViewBox().viewRange()
    assert loss_top > 0.95  # a loss has no ceiling: its margin stays


@pytest.mark.req("REQ-U02", "REQ-U03")
def test_a_new_runs_repaints_are_done_before_its_worker_would_start(dash: Dashboard, qtbot) -> None:
    from studio.ui.run_bridge import paint_pending

    _finished_run(dash, "first", 2.0)
    qtbot.wait(50)  # the first run's frames are painted and done
    before = {name: len(chart.paint_cpu_s) for name, chart in dash.charts.items()}
    dash.new_run("second")  # the first run's curves recede: every chart must repaint
    assert {name: len(chart.paint_cpu_s) for name, chart in dash.charts.items()} == before  # Qt paints later...
    paint_pending()  # ... unless asked now, as RunBridge.start does before it starts the worker
    assert all(len(chart.paint_cpu_s) > before[name] for name, chart in dash.charts.items())

