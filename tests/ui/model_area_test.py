"""The Model area: registry list, schema form with help text, live parameter count (REQ-U06, REQ-U16)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox
from ui_helpers import wait_idle

from studio.backend.core.registry import default_registry
from studio.backend.core.requests import DataSpec, InspectModelRequest, ModelSpec
from studio.ui.widgets.hparam_form import HParamForm

WIDGETS = {"int": QSpinBox, "float": QDoubleSpinBox, "bool": QCheckBox, "choice": QComboBox, "int_list": QLineEdit}


@pytest.mark.req("REQ-U06", "REQ-U16")
def test_every_model_of_the_registry_gets_a_form_of_the_right_widgets_ranges_and_tooltips(window, qtbot) -> None:
    catalogue = window.state.catalogue
    area = window.model_area
    listed = [area.model_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(area.model_list.count())]
    assert listed == [m["name"] for m in catalogue.models] and "mlp" in listed
    for info in catalogue.models:
        form = HParamForm(info["schema"])
        for entry in info["schema"]:
            widget = form.widgets[entry["name"]]
            assert isinstance(widget, WIDGETS[entry["type"]]), (info["name"], entry["name"])
            assert widget.toolTip() == entry["help"] and widget.toolTip().strip()  # plain-words help as tooltip
            if entry["type"] in ("int", "float") and entry["min"] is not None:
                assert (widget.minimum(), widget.maximum()) == (entry["min"], entry["max"])
            if entry["type"] == "choice":
                assert [widget.itemText(i) for i in range(widget.count())] == entry["choices"]
        assert form.values() == {}  # the defaults stay implicit
        form.deleteLater()


@pytest.mark.req("REQ-U06")
def test_typing_a_width_updates_the_parameter_count_to_the_backends_figure(window, qtbot) -> None:
    area = window.model_area
    window.show_area("Model")
    wait_idle(window, qtbot)
    assert area.summary is not None and area.summary.params_total == 17_226  # mlp 128-64 on 8x8 digits
    hidden = area.form.widgets["hidden"]
    hidden.clear()
    qtbot.keyClicks(hidden, "32")  # as a person types; each key restarts the 200 ms debounce
    assert window.state.model == ModelSpec(name="mlp", hparams={"hidden": [32]})
    before = area.inspections
    wait_idle(window, qtbot)
    assert area.inspections == before + 1  # one inspection for the whole typing burst
    expected = default_registry().get("pytorch", "inspect_model")(InspectModelRequest(
        model=ModelSpec(name="mlp", hparams={"hidden": [32]}), data=DataSpec(name="digits")))
    assert area.summary.params_total == expected.params_total == 64 * 32 + 32 + 32 * 10 + 10
    assert "2.4 K parameters" in area.params_label.text()
    assert area.layers.rowCount() == len(expected.layers)
    hidden.setText("32, x")  # not a list of numbers: says so, keeps the last valid model
    assert area.form_problem.isVisible() and window.state.model.hparams == {"hidden": [32]}


@pytest.mark.req("REQ-U06")
def test_switching_model_or_preset_rebuilds_the_form(window, qtbot) -> None:
    area = window.model_area
    window.show_area("Model")
    wait_idle(window, qtbot)
    for i in range(area.model_list.count()):
        if area.model_list.item(i).data(Qt.ItemDataRole.UserRole) == "lenet":
            area.model_list.setCurrentRow(i)
    assert window.state.model == ModelSpec(name="lenet")
    assert set(area.form.widgets) == {"channels", "hidden", "pool_size", "activation", "dropout"}
    assert "LeNet" in area.description.text()
    wait_idle(window, qtbot)
    assert area.summary.name == "lenet" and area.summary.params_total > 0
    area.preset_combo.setCurrentIndex(area.preset_combo.findData("tiny"))
    assert window.state.model == ModelSpec(name="lenet", preset="tiny")
    assert area.form.widgets["channels"].text() == "4, 8"
    wait_idle(window, qtbot)
    tiny = area.summary.params_total
    area.select_model("gru")  # a sequence model: greyed for image data, and the backend says why
    wait_idle(window, qtbot)
    assert area.fit_note.isVisible() and "sequence" in area.fit_note.text()
    assert area.inspect_problem.isVisible() and area.summary is None
    assert tiny > 0
