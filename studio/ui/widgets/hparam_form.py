"""A form generated from a model's hyperparameter schema (REQ-U06, REQ-U16).

``int`` becomes a spin box, ``float`` a decimal spin box, ``bool`` a check box, ``choice`` a
combo box and ``int_list`` a line edit accepting numbers separated by commas; ranges come from
the schema and every widget carries the schema's help text as its tooltip.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

__all__ = ["HParamForm", "parse_int_list"]

_INT_MAX = 2_147_483_647


def parse_int_list(text: str) -> list[int] | None:
    """``"128, 64"`` -> ``[128, 64]``; ``""`` -> ``[]``; None when it is not a list of whole numbers."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    if parts == [""]:
        return []
    try:
        return [int(p) for p in parts]
    except ValueError:
        return None


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class HParamForm(QWidget):
    """Emits :attr:`changed` whenever a value changes; :meth:`values` gives the valid ones."""

    changed = Signal()

    def __init__(self, schema: list[dict[str, Any]] | tuple[dict[str, Any], ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schema = [dict(s) for s in schema]
        self.widgets: dict[str, QWidget] = {}
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        for entry in self.schema:
            widget = self._make(entry)
            widget.setObjectName(f"hparam_{entry['name']}")
            widget.setToolTip(str(entry.get("help") or _label(entry["name"])))
            self.widgets[entry["name"]] = widget
            self.form.addRow(_label(entry["name"]), widget)
            self.form.labelForField(widget).setToolTip(widget.toolTip())

    def _make(self, entry: dict[str, Any]) -> QWidget:
        kind, default = entry.get("type"), entry.get("default")
        lo, hi = entry.get("min"), entry.get("max")
        if kind == "int":
            box = QSpinBox()
            box.setRange(int(lo) if lo is not None else -_INT_MAX, int(hi) if hi is not None else _INT_MAX)
            box.setValue(int(default or 0))
            box.valueChanged.connect(self._emit)
            return box
        if kind == "float":
            dbox = QDoubleSpinBox()
            dbox.setDecimals(4)
            dbox.setRange(float(lo) if lo is not None else -1e9, float(hi) if hi is not None else 1e9)
            span = (float(hi) - float(lo)) if lo is not None and hi is not None else 1.0
            dbox.setSingleStep(0.05 if span <= 1 else 0.1)
            dbox.setValue(float(default or 0.0))
            dbox.valueChanged.connect(self._emit)
            return dbox
        if kind == "bool":
            check = QCheckBox()
            check.setChecked(bool(default))
            check.toggled.connect(self._emit)
            return check
        if kind == "choice":
            combo = QComboBox()
            combo.addItems([str(c) for c in entry.get("choices", ())])
            combo.setCurrentText(str(default))
            combo.currentIndexChanged.connect(self._emit)
            return combo
        edit = QLineEdit(", ".join(str(v) for v in (default or [])))
        edit.setValidator(QRegularExpressionValidator(r"^\s*(\d+\s*(,\s*\d+\s*)*)?,?\s*$"))
        edit.setPlaceholderText("numbers separated by commas, e.g. 128, 64")
        edit.textChanged.connect(self._emit)
        return edit

    @Slot()
    def _emit(self, *_: object) -> None:
        self.changed.emit()

    def value(self, name: str) -> Any:
        widget = self.widgets[name]
        if isinstance(widget, QSpinBox):
            return widget.value()
        if isinstance(widget, QDoubleSpinBox):
            return round(widget.value(), 6)
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentText()
        assert isinstance(widget, QLineEdit)
        return parse_int_list(widget.text())

    def problems(self) -> list[str]:
        """Human-readable reasons the current values cannot be used (empty when all are fine)."""
        out = []
        for entry in self.schema:
            if entry.get("type") != "int_list":
                continue
            values = self.value(entry["name"])
            label = _label(entry["name"])
            if values is None:
                out.append(f"{label}: use whole numbers separated by commas.")
                continue
            lo, hi = entry.get("min"), entry.get("max")
            if any((lo is not None and v < lo) or (hi is not None and v > hi) for v in values):
                out.append(f"{label}: each number must be between {lo} and {hi}.")
            n_lo, n_hi = entry.get("min_items", 0), entry.get("max_items")
            if len(values) < (n_lo or 0) or (n_hi is not None and len(values) > n_hi):
                out.append(f"{label}: give between {n_lo or 0} and {n_hi} numbers.")
        return out

    def values(self) -> dict[str, Any]:
        """Every value that differs from the schema default (the defaults stay implicit)."""
        out = {}
        for entry in self.schema:
            value = self.value(entry["name"])
            if value is None:
                continue
            default = entry.get("default")
            if entry.get("type") == "int_list":
                default = list(default or [])
            if value != default:
                out[entry["name"]] = value
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (defaults for names not given), without emitting one change per widget."""
        self.blockSignals(True)
        try:
            for entry in self.schema:
                value = values.get(entry["name"], entry.get("default"))
                widget = self.widgets[entry["name"]]
                if isinstance(widget, QSpinBox):
                    widget.setValue(int(value))
                elif isinstance(widget, QDoubleSpinBox):
                    widget.setValue(float(value))
                elif isinstance(widget, QCheckBox):
                    widget.setChecked(bool(value))
                elif isinstance(widget, QComboBox):
                    widget.setCurrentText(str(value))
                elif isinstance(widget, QLineEdit):
                    widget.setText(", ".join(str(v) for v in (value or [])))
        finally:
            self.blockSignals(False)
        self.changed.emit()
