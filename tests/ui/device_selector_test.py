"""Device selector: names and memory, precision only where supported, live memory readout (REQ-U14)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtGui import QStandardItemModel
from ui_helpers import RUN_TIMEOUT_MS, registry_with, wait_run

from studio.backend.core.events import RunFinished, RunStarted, StepStats
from studio.backend.core.requests import CatalogueRequest
from studio.backend.core.results import Catalogue, TrainResult
from studio.ui.widgets.device_selector import DeviceSelector

GIB = 1 << 30
DEVICES = ({"id": "cpu", "kind": "cpu", "name": "Test CPU (8 threads)", "total_memory_bytes": 16 * GIB,
            "bf16": True, "fp16": False},
           {"id": "cuda:0", "kind": "cuda", "name": "NVIDIA Test 24GB", "total_memory_bytes": 24 * GIB,
            "bf16": False, "fp16": True})


def _enabled(selector: DeviceSelector) -> dict[str, bool]:
    model = selector.precision_combo.model()
    assert isinstance(model, QStandardItemModel)
    return {selector.precision_combo.itemData(i): model.item(i).isEnabled()
            for i in range(selector.precision_combo.count())}


@pytest.mark.req("REQ-U14")
def test_devices_are_listed_with_name_and_memory_and_precision_follows_support(qtbot) -> None:
    selector = DeviceSelector()
    qtbot.addWidget(selector)
    selector.set_devices(DEVICES)
    texts = [selector.device_combo.itemText(i) for i in range(selector.device_combo.count())]
    assert texts == ["Automatic (cuda:0)", "cpu — Test CPU (8 threads) (16.0 GiB)", "cuda:0 — NVIDIA Test 24GB (24.0 GiB)"]
    assert _enabled(selector) == {"fp32": True, "bf16": False, "fp16": True}  # automatic picks the GPU
    selector.set_precision("bf16")
    assert selector.precision() == "fp32"  # not offered where unsupported
    selector.set_precision("fp16")
    selector.set_device("cpu")
    assert _enabled(selector) == {"fp32": True, "bf16": True, "fp16": False}
    assert selector.precision() == "fp32"  # fp16 fell back when the CPU was chosen
    selector.set_device("cuda:0")
    selector.show_memory(3 * GIB, "on the device")
    assert selector.memory_label.text() == "Memory: 3.0 GiB of 24.0 GiB on the device"


@pytest.mark.req("REQ-U14")
def test_the_chosen_device_reaches_the_request_and_step_memory_shows_live(make_window, qtbot) -> None:
    seen: dict = {}
    release = threading.Event()

    def catalogue(request: CatalogueRequest, **_: object) -> Catalogue:
        from studio.backend.core.registry import default_registry

        real = default_registry().get("pytorch", "catalogue")(CatalogueRequest(include_devices=False))
        return Catalogue(datasets=real.datasets, models=real.models, devices=DEVICES, choices=real.choices)

    def train(request, *, events, control):  # noqa: ANN001, ANN202 - a GPU run, as its events show it
        seen["request"] = request
        events(RunStarted("gpu", "train", 1, 100, device="cuda:0"))
        for step in (1, 2):
            events(StepStats("gpu", step, 0, 1.0, 64, 1e-3, 0.01, 6400.0, metrics={"device_mem_bytes": 5 * GIB}))
        release.wait(30)
        events(RunFinished("gpu", 2, 0))
        return TrainResult(status="finished", model="none", epochs_run=1, steps=2, final_metrics={}, best_metrics={},
                           best_epoch=0)

    window = make_window(registry=registry_with(catalogue=catalogue, train=train), restore_settings=False)
    device = window.train_area.device
    device.set_device("cuda:0")
    device.set_precision("fp16")
    window.start_training()
    qtbot.waitUntil(lambda: "5.0 GiB of 24.0 GiB" in device.memory_label.text(), timeout=RUN_TIMEOUT_MS)
    release.set()
    wait_run(window, qtbot)
    assert seen["request"].runtime.device == "cuda:0" and seen["request"].config.precision == "fp16"
    assert device.memory_label.text() == "Memory: idle"
