"""Device and precision choice with a live memory readout (REQ-U14).

Devices come from the ``catalogue`` query (``describe_devices()``: id, kind, name, memory, bf16,
fp16). Mixed precision is offered only where the chosen device supports it: the other entries
stay listed but disabled, with a tooltip saying why.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QWidget

from studio.backend.core.formatting import format_bytes

__all__ = ["DeviceSelector", "device_label"]

PRECISIONS = (("fp32", "Full precision (fp32)"), ("bf16", "Mixed precision, bfloat16"),
              ("fp16", "Mixed precision, float16"))


def device_label(device: dict[str, Any]) -> str:
    memory = device.get("total_memory_bytes")
    size = f" ({format_bytes(memory)})" if isinstance(memory, (int, float)) and memory > 0 else ""
    return f"{device.get('id', '?')} — {device.get('name', device.get('kind', ''))}{size}"


class DeviceSelector(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.devices: list[dict[str, Any]] = []
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Where training runs. Automatic picks the fastest device found.")
        self.precision_combo = QComboBox()
        self.precision_combo.setToolTip(
            "Mixed precision computes in 16-bit numbers where it is safe: faster and lighter on devices "
            "that support it. Full precision works everywhere.")
        for value, text in PRECISIONS:
            self.precision_combo.addItem(text, value)
        self.memory_label = QLabel("Memory: idle")
        self.memory_label.setToolTip("Memory the run uses on its device, updated while it trains.")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("", self.memory_label)
        self.set_devices([{"id": "cpu", "kind": "cpu", "name": "CPU", "total_memory_bytes": 0,
                           "bf16": False, "fp16": False}])
        self.device_combo.currentIndexChanged.connect(self._on_device)
        self.precision_combo.currentIndexChanged.connect(self._emit)

    def set_devices(self, devices: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> None:
        keep = self.device()
        self.devices = [dict(d) for d in devices]
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        best = self._auto()
        self.device_combo.addItem(f"Automatic ({best.get('id', 'cpu')})", "auto")
        for device in self.devices:
            self.device_combo.addItem(device_label(device), device.get("id"))
        index = self.device_combo.findData(keep)
        self.device_combo.setCurrentIndex(max(index, 0))
        self.device_combo.blockSignals(False)
        self._update_precisions()

    def _auto(self) -> dict[str, Any]:
        accelerators = [d for d in self.devices if d.get("kind") != "cpu"]
        return (accelerators or self.devices or [{"id": "cpu"}])[0]

    def selected_info(self) -> dict[str, Any]:
        chosen = self.device()
        if chosen == "auto":
            return self._auto()
        return next((d for d in self.devices if d.get("id") == chosen), {"id": chosen})

    def device(self) -> str:
        return self.device_combo.currentData() or "auto"

    def precision(self) -> str:
        return self.precision_combo.currentData() or "fp32"

    def set_device(self, device_id: str) -> None:
        index = self.device_combo.findData(device_id)
        if index < 0:
            index = 0
        self.device_combo.setCurrentIndex(index)

    def set_precision(self, precision: str) -> None:
        index = self.precision_combo.findData(precision)
        model = self.precision_combo.model()
        if index >= 0 and isinstance(model, QStandardItemModel) and model.item(index).isEnabled():
            self.precision_combo.setCurrentIndex(index)
        else:
            self.precision_combo.setCurrentIndex(0)

    def precision_supported(self, precision: str) -> bool:
        if precision == "fp32":
            return True
        return bool(self.selected_info().get(precision, False))

    def _update_precisions(self) -> None:
        model = self.precision_combo.model()
        if not isinstance(model, QStandardItemModel):
            return
        info = self.selected_info()
        for i in range(self.precision_combo.count()):
            value = self.precision_combo.itemData(i)
            ok = self.precision_supported(value)
            item = model.item(i)
            item.setEnabled(ok)
            item.setToolTip("" if ok else f"{info.get('name', info.get('id'))} does not support {value}.")
        if not self.precision_supported(self.precision()):
            self.precision_combo.setCurrentIndex(0)

    @Slot(int)
    def _on_device(self, _index: int) -> None:
        self._update_precisions()
        self.changed.emit()

    @Slot(int)
    def _emit(self, _index: int) -> None:
        self.changed.emit()

    def show_memory(self, used_bytes: float | None, where: str = "") -> None:
        if used_bytes is None:
            self.memory_label.setText("Memory: idle")
            return
        info = self.selected_info()
        total = info.get("total_memory_bytes") or 0
        of = f" of {format_bytes(total)}" if total else ""
        self.memory_label.setText(f"Memory: {format_bytes(used_bytes)}{of}{' ' + where if where else ''}")
