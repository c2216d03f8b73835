"""Help > About this system: the window shows the ``studio doctor`` report and copies it for a bug report."""

from __future__ import annotations

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from ui_helpers import RUN_TIMEOUT_MS

from studio.doctor import format_report


def test_help_menu_opens_the_report_with_the_backend_and_the_running_qt(window, qtbot, isolated_settings) -> None:
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert window.doctor_action in help_menu.actions()
    window.doctor_action.trigger()
    from studio.ui.doctor_dialog import DoctorDialog

    dialog = window.findChild(DoctorDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: "framework" in dialog.report["backend"], timeout=RUN_TIMEOUT_MS)
    text = dialog.text.toPlainText()
    assert text == format_report(dialog.report)
    assert "pytorch: torch " in text and "cpu: " in text
    assert f"Qt {qVersion()}" in text
    assert dialog.report["qt"]["plugin"] == QGuiApplication.platformName() == "offscreen"
    settings = next(f for f in dialog.report["folders"] if f["name"] == "settings")
    assert settings["file"] == window.settings.q.fileName() and str(isolated_settings) in settings["file"]
    window.doctor_action.trigger()  # a second time raises the same dialog
    assert window.findChildren(DoctorDialog) == [dialog]
    dialog.grab().save(str(isolated_settings.parent / "doctor.png"))


def test_copy_puts_the_whole_report_on_the_clipboard(window, qtbot) -> None:
    from studio.ui.doctor_dialog import show_doctor

    dialog = show_doctor(window)
    qtbot.waitUntil(lambda: "framework" in dialog.report["backend"], timeout=RUN_TIMEOUT_MS)
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dialog.text.toPlainText() == format_report(dialog.report)
    assert dialog.copy_button.text() == "Copied"


def test_a_backend_that_fails_shows_in_the_report(qtbot) -> None:
    from ui_helpers import registry_with

    from studio.ui.doctor_dialog import DoctorDialog
    from studio.ui.tasks import Backend, TaskRunner

    def broken(request, **_):  # noqa: ANN001, ANN202
        raise RuntimeError("CUDA driver too old")

    tasks = TaskRunner(Backend(registry_with(environment=broken)))
    try:
        dialog = DoctorDialog(tasks)
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: "error" in dialog.report["backend"], timeout=RUN_TIMEOUT_MS)
        assert "CUDA driver too old" in dialog.report["backend"]["error"]
        assert any(p.startswith("The backend did not start") for p in dialog.report["problems"])
        assert "not available" in dialog.text.toPlainText()
    finally:
        tasks.shutdown()
