"""The window's speed (STUDIO-UI-001, issue 6): latency, throughput, plotting, start-up, first step.

- ``gui_latency_p99_ms``: lateness (99th percentile) of a 10 ms ``QTimer`` on the GUI thread while
  the fastest built-in training (``two_moons`` + ``linear``, one CPU thread) runs in the window
  (separate runs from the throughput ones, so the probe's wake-ups do not count against throughput),
  up to the end of the run's own end-of-run work; the detail gives it for the ticks while the worker
  trained alone too.
- ``gui_throughput_ratio``: that training's steps per second with the window attached (dashboard
  drawing live) divided by the same training headless (the handler called as the command line
  calls it, its events buffered in an ``EventStream``), interleaved in one process, median of the
  paired ratios, with a bootstrap 95% interval of that median. The detail adds the GUI thread's
  CPU time as a share of each run's wall time (what the window's ``GuiBudget`` holds to 3%; far
  less noisy than the ratio) and the frames per second the dashboard drew, and the same figures
  for what one click on Train runs (digits + mlp, 20 epochs).
- ``plot_frame_ms_1m``: one frame of a chart holding 1,000,000 points (new points, ``redraw`` and a
  synchronous repaint of its viewport, checked to have painted), 95th percentile over the frames.
- ``startup_window_s``: from launching ``studio``'s window code in a new process to its first paint.
- ``first_step_ratio``: launch to first training step shown by the studio, divided by launch to
  first step of a bare PyTorch script training the same model on the same data; interleaved.

Every measurement runs offscreen in a child process (``QT_QPA_PLATFORM=offscreen``) with
temporary settings, so the runner's own process never creates a ``QApplication``.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

COMMON = textwrap.dedent("""
    import json, os, sys, tempfile, time
    from PySide6.QtCore import QSettings
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
""")

LOOP = COMMON + textwrap.dedent("""
    import numpy as np
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication
    from studio.backend.core.handler import RunControl
    from studio.backend.core.registry import default_registry
    from studio.backend.core.requests import DataSpec, ModelSpec, RuntimeConfig, TrainConfig, TrainRequest
    from studio.backend.core.stats_delivery import EventStream
    from studio.ui.main_window import MainWindow

    reps, epochs, data_name, model_name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    app = QApplication(sys.argv[:1])
    window = MainWindow(restore_settings=False)
    window.resize(1280, 800)
    window.show()
    request = TrainRequest(data=DataSpec(name=data_name), model=ModelSpec(name=model_name),
                           config=TrainConfig(epochs=epochs), runtime=RuntimeConfig(threads=1))
    train = default_registry().get("pytorch", "train")
    lateness = []
    state = {"expected": 0.0, "probing": False}

    in_run = []  # the lateness of ticks while the worker trained (the rest fall in the run's end)

    def tick():
        now = time.perf_counter()
        if state["probing"]:
            lateness.append(max(0.0, now - state["expected"]))
            if window.bridge.running:
                in_run.append(lateness[-1])
        state["expected"] = now + 0.010

    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(10)
    probe.timeout.connect(tick)  # started only for the latency runs: its wake-ups would count against throughput

    def wait_until(done, seconds=600):
        end = time.perf_counter() + seconds
        while not done() and time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    wait_until(lambda: window.state.catalogue is not None and window.is_settled())
    window.state.set_data(request.data)
    window.state.set_model(request.model)
    window.state.set_config(request.config)
    window.state.set_runtime(request.runtime)
    wait_until(window.is_settled)

    def headless():  # as the command line calls it: events buffered, a RunControl for Ctrl-C
        result = train(request, events=EventStream().emit, control=RunControl())
        return result.steps / result.duration_s

    dash = window.train_area.dashboard
    usage = []  # per windowed run: GUI-thread CPU seconds, wall seconds and frames while it trained

    def windowed(probe_it):
        loop = QEventLoop()
        mark = {}

        def ended(running):  # runs as the worker ends, before the window's end-of-run work
            if not running:
                mark.update(cpu=time.thread_time(), wall=time.perf_counter(), frames=dash.frames)

        window.bridge.running_changed.connect(loop.quit)
        window.bridge.running_changed.connect(ended)
        state["probing"] = probe_it
        state["expected"] = time.perf_counter() + 0.010
        if probe_it:
            probe.start()
        window.start_training()
        cpu0, wall0, frames0 = time.thread_time(), time.perf_counter(), dash.frames
        loop.exec()
        probe.stop()
        window.bridge.running_changed.disconnect(ended)
        if not probe_it:
            usage.append((mark["cpu"] - cpu0, mark["wall"] - wall0, mark["frames"] - frames0))
        state["probing"] = False
        window.bridge.running_changed.disconnect(loop.quit)
        result = window.last_result
        assert result is not None and result.status == "finished", window.last_error
        # the window then evaluates the new model in its task thread (confusion matrix, mistakes):
        # let that finish, so it is not measured against the next run, headless or not
        wait_until(window.is_settled)
        return result.steps / result.duration_s

    headless(); windowed(False)  # warm-up: first-use imports and caches
    wait_until(window.is_settled)
    ratios, heads, wins = [], [], []
    for i in range(reps):
        if i % 2 == 0:
            h = headless(); w = windowed(False)
        else:
            w = windowed(False); h = headless()
        heads.append(h); wins.append(w); ratios.append(w / h)
        windowed(True)  # the latency probe runs in its own runs: its 100 wake-ups a second cost the GIL too
    print(json.dumps({"p99_ms": float(np.percentile(lateness, 99)) * 1000, "max_ms": max(lateness) * 1000,
                      "in_run_p99_ms": float(np.percentile(in_run, 99)) * 1000, "in_run_max_ms": max(in_run) * 1000,
                      "ticks": len(lateness), "ratios": ratios, "headless_steps_per_s": heads,
                      "window_steps_per_s": wins, "gui_share": [c / w for c, w, _ in usage],
                      "frames_per_s": [f / w for _, w, f in usage]}))
    window.close()
""")

PLOT = COMMON + textwrap.dedent("""
    import numpy as np
    from PySide6.QtWidgets import QApplication
    from studio.ui.charts import LiveChart

    frames = int(sys.argv[1])
    app = QApplication(sys.argv[:1])
    chart = LiveChart("Loss", "loss")
    chart.resize(900, 500)
    chart.show()
    app.processEvents()
    x = np.arange(1, 1_000_001, dtype=np.float64)
    y = 1.0 / np.sqrt(x) + 0.05 * np.sin(x / 50.0)
    chart.add_points("train", x, y)
    # the view's viewport is what paints: repaint() on the view itself paints nothing of the plot
    chart.redraw(); chart.viewport().repaint()
    painted = len(chart.paint_cpu_s)
    times = []
    step = 1_000_000
    for i in range(frames):
        new = np.arange(step + 1, step + 1001, dtype=np.float64)
        step += 1000
        started = time.perf_counter()
        chart.add_points("train", new, 1.0 / np.sqrt(new))
        chart.redraw()
        chart.viewport().repaint()
        times.append(time.perf_counter() - started)
    assert len(chart.paint_cpu_s) - painted == frames, "a frame that paints nothing measures nothing"
    print(json.dumps({"ms": [t * 1000 for t in times], "points": chart.point_count("train"),
                      "drawn": chart.drawn_points("train")}))
""")

STARTUP = COMMON + textwrap.dedent("""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from studio.ui.app import create_window

    app, window = create_window(sys.argv[:1])

    class Paints(QObject):
        def __init__(self):
            super().__init__()
            self.painted = False
            self.ready = False

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                if not self.painted:
                    self.painted = True
                    QTimer.singleShot(0, lambda: print("painted", flush=True))
                elif window.is_ready and not self.ready:
                    self.ready = True  # the areas are built and painting: the window is usable
                    QTimer.singleShot(0, lambda: (print("ready", flush=True), app.quit()))
            return False

    probe = Paints()
    app.installEventFilter(probe)
    app.exec()
    window.close()
""")

STUDIO_FIRST_STEP = COMMON + textwrap.dedent("""
    from studio.backend.core.events import StepStats
    from studio.ui.app import create_window

    app, window = create_window(sys.argv[:1])

    def on_events(batch):
        if any(isinstance(e, StepStats) for e in batch):
            print("first step", flush=True)
            window.bridge.events.disconnect(on_events)
            window.stop_training()

    def click_train():  # one click on Train as soon as the window can take it
        window.bridge.events.connect(on_events)
        window.bridge.running_changed.connect(lambda running: None if running else app.quit())
        window.start_training()

    window.ready.connect(click_train)
    app.exec()
    window.close()
""")

BARE_FIRST_STEP = textwrap.dedent("""
    import torch
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(x))
    xb, yb = x[order[:64]], y[order[:64]]
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    optimizer.step()
    print("first step", loss.item(), flush=True)
""")


def _env(tmp: str) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_STATE_DIR=tmp, STUDIO_LOG_DIR=os.path.join(tmp, "logs"),
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _child_json(script: str, *args: object, timeout: float = 1800) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                             timeout=timeout, env=_env(tmp), cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _time_to_lines(script: str, *markers: str, timeout: float = 300) -> list[float]:
    """Seconds from launching ``script`` in a new Python process to it printing each marker, in order."""
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=_env(tmp), cwd=ROOT)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if len(times) < len(markers) and line.startswith(markers[len(times)]):
                    times.append(time.perf_counter() - started)
                    if len(times) == len(markers):
                        break
            if len(times) < len(markers):
                raise RuntimeError(f"the child never printed {markers[len(times)]!r}")
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _median_ci(values: list[float], level: float = 0.95, resamples: int = 4000) -> tuple[float, float]:
    """A bootstrap confidence interval of the median (seeded, so a rerun on the same figures agrees)."""
    import numpy as np

    data = np.asarray(values)
    picks = np.random.default_rng(0).integers(0, len(data), size=(resamples, len(data)))
    medians = np.median(data[picks], axis=1)
    return float(np.quantile(medians, (1 - level) / 2)), float(np.quantile(medians, (1 + level) / 2))


def loop_figures(quick: bool) -> dict:
    # each rep is one headless and one windowed run, paired; on a shared 2-core machine single
    # ratios spread from 0.8 to 1.2, so the quick run takes fifteen pairs, the full one 31, and
    # both report the quartiles and a 95% interval of the median
    reps, epochs = (15, 100) if quick else (31, 200)
    data = _child_json(LOOP, reps, epochs, "two_moons", "linear")
    ratio = statistics.median(data["ratios"])
    quartiles = statistics.quantiles(data["ratios"], n=4)
    low, high = _median_ci(data["ratios"])
    # what one click on Train runs (the window's defaults: digits, mlp, 20 epochs), also on one thread
    usual = _child_json(LOOP, 7 if quick else 15, 20, "digits", "mlp")
    usual_quartiles = statistics.quantiles(usual["ratios"], n=4)
    reference = ("two_moons + linear, 1 CPU thread, window attached with the live dashboard vs the handler "
                 "called headless as the command line calls it; interleaved")
    return {
        "gui_latency_p99_ms": {"value": round(data["p99_ms"], 1), "unit": "ms", "goal": "<= 50",
                               "reference": "lateness of a 10 ms QTimer during that training",
                               "detail": {"max_ms": round(data["max_ms"], 1), "ticks": data["ticks"],
                                          # the ticks while the worker trains, without the run's end (the
                                          # last frame fitted to the data, the new model evaluated)
                                          "in_run_p99_ms": round(data["in_run_p99_ms"], 1),
                                          "in_run_max_ms": round(data["in_run_max_ms"], 1)}},
        "gui_throughput_ratio": {"value": round(ratio, 3), "unit": "x", "goal": ">= 0.95", "reference": reference,
                                 "detail": {**{k: [round(v, 3) for v in data[k]]
                                               for k in ("ratios", "headless_steps_per_s", "window_steps_per_s")},
                                            "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)],
                                            "median_95ci": [round(low, 3), round(high, 3)],
                                            "gui_cpu_share": round(statistics.median(data["gui_share"]), 4),
                                            "frames_per_s": round(statistics.median(data["frames_per_s"]), 1),
                                            "default_training": {
                                                "workload": "digits + mlp, 20 epochs (the window's defaults), 1 CPU thread",
                                                "ratio": round(statistics.median(usual["ratios"]), 3),
                                                "ratio_quartiles": [round(usual_quartiles[0], 3),
                                                                    round(usual_quartiles[2], 3)],
                                                "ratios": [round(v, 3) for v in usual["ratios"]],
                                                "gui_cpu_share": round(statistics.median(usual["gui_share"]), 4),
                                                "frames_per_s": round(statistics.median(usual["frames_per_s"]), 1)}}},
    }


def plot_figure(quick: bool) -> dict:
    data = _child_json(PLOT, 20 if quick else 60)
    ms = data["ms"]
    return {"plot_frame_ms_1m": {"value": round(_p(ms, 0.95), 2), "unit": "ms", "goal": "<= 33",
                                 "reference": "LiveChart 900x500 holding 1,000,000 points: append 1000, redraw, repaint",
                                 "detail": {"median_ms": round(statistics.median(ms), 2), "max_ms": round(max(ms), 2),
                                            "points": data["points"], "drawn_points": data["drawn"]}}}


def startup_figure(quick: bool) -> dict:
    runs = [_time_to_lines(STARTUP, "painted", "ready") for _ in range(3 if quick else 7)]
    painted, ready = [r[0] for r in runs], [r[1] for r in runs]
    return {"startup_window_s": {"value": round(statistics.median(painted), 3), "unit": "s", "goal": "<= 1.0",
                                 "reference": "new process running studio's window code to its first paint "
                                              "(tabs, menus, status; the areas follow, see ready_s)",
                                 "detail": {"runs_s": [round(r, 3) for r in painted],
                                            "ready_s": [round(r, 3) for r in ready],
                                            "ready_median_s": round(statistics.median(ready), 3)}}}


def first_step_figure(quick: bool) -> dict:
    studio, bare = [], []
    for i in range(2 if quick else 5):
        pair = [(STUDIO_FIRST_STEP, studio), (BARE_FIRST_STEP, bare)]
        for script, into in (pair if i % 2 == 0 else pair[::-1]):
            into.append(_time_to_lines(script, "first step")[0])
    ratio = statistics.median(studio) / statistics.median(bare)
    return {"first_step_ratio": {"value": round(ratio, 3), "unit": "x", "goal": "<= 1.2",
                                 "reference": "launch to first step: studio window + Train vs a bare PyTorch script "
                                              "(same MLP, digits, Adam); interleaved",
                                 "detail": {"studio_s": [round(s, 3) for s in studio],
                                            "bare_s": [round(s, 3) for s in bare]}}}


def run(quick: bool = False) -> dict:
    results: dict = {}
    results.update(plot_figure(quick))
    results.update(startup_figure(quick))
    results.update(first_step_figure(quick))
    results.update(loop_figures(quick))
    return results


if __name__ == "__main__":
    for name, figure in run(quick="--quick" in sys.argv).items():
        print(name, figure["value"], figure["unit"], figure["goal"], figure.get("detail", ""))
