"""PySide6 6.12.0 aborts Python 3.11 after ~570 Signal.emit() calls (bool_dealloc).

The constraints pin 6.11.3 and pyproject excludes 6.12.0; this test keeps the promise by
emitting 10,000 signals from a worker QThread to a GUI-thread slot in a child process, so an
abort shows up as a clear failure instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import sys
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot, QTimer

N = 10_000

class Worker(QThread):
    tick = Signal(int, bool, object)

    def run(self):
        for i in range(N):
            self.tick.emit(i, i % 2 == 0, {"step": i})

class Sink(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.last = -1
        self.in_order = True

    @Slot(int, bool, object)
    def on_tick(self, i, even, payload):
        self.in_order &= (i == self.last + 1) and (even == (i % 2 == 0)) and payload["step"] == i
        self.last = i
        self.count += 1
        if self.count == N:
            QCoreApplication.quit()

app = QCoreApplication(sys.argv)
sink = Sink()
worker = Worker()
worker.tick.connect(sink.on_tick)
QTimer.singleShot(60_000, app.quit)
worker.start()
app.exec()
worker.wait()
print(sink.count, sink.in_order)
"""


def test_ten_thousand_cross_thread_signals_arrive_in_order_without_abort() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, f"the Qt process died (exit {out.returncode}):\n{out.stderr[-2000:]}"
    assert out.stdout.split() == ["10000", "True"]
