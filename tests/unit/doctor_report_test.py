"""The ``studio doctor`` report (:mod:`studio.doctor`): what it says about each part, and what it calls wrong.

The machine's facts come through the preflight's seam (:class:`studio.preflight.System`) where a case
needs a display or a library this machine lacks; the backend's part is the real ``environment`` handler.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
import torch

from studio.backend.core.environment import BackendEnvironment, EnvironmentRequest
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import CatalogueRequest
from studio.doctor import collect, format_report
from studio.doctor.extras import extras
from studio.doctor.folders import writable
from studio.preflight import System


def fake(env: dict[str, str], absent: tuple[str, ...] = (), release: dict[str, str] | None = None) -> System:
    return System(env=env, platform="linux", has_library=lambda name: name not in absent,
                  probe_x11=lambda display: None, probe_wayland=lambda name, runtime: None,
                  os_release=lambda: release or {"ID": "fedora", "PRETTY_NAME": "Fedora Linux 40"}, as_root=False)


@pytest.fixture(scope="module")
def backend() -> dict:
    return default_registry().get("pytorch", "environment")(EnvironmentRequest()).to_dict()


@pytest.fixture(autouse=True)
def folders_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STATE", "LOG", "CACHE"):
        monkeypatch.setenv(f"STUDIO_{name}_DIR", str(tmp_path / name.lower()))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_the_environment_handler_reports_torch_its_build_and_the_devices(backend: dict) -> None:
    assert BackendEnvironment.from_dict(backend).framework == "torch"
    assert backend["version"] == torch.__version__ and backend["build"]["cuda"] == torch.version.cuda
    assert set(backend["build"]) >= {"cuda", "hip", "mps", "cuda_available", "mps_available"}
    cpu = backend["devices"][0]
    assert cpu["id"] == "cpu" and cpu["total_memory_bytes"] > 0
    assert [d["id"] for d in backend["devices"]] == [d["id"] for d in
                                                     default_registry().get("pytorch", "catalogue")(CatalogueRequest()).devices]


def test_a_healthy_machine_has_no_problems_and_every_section(backend: dict) -> None:
    report = collect(backend, system=fake({"DISPLAY": ":0"}))
    assert set(report) == {"studio", "python", "system", "backend", "qt", "display", "libraries", "folders", "extras",
                           "disk", "problems"}
    assert report["problems"] == []
    assert report["qt"]["plugin"] == "xcb" and report["qt"]["pyside6"] == metadata.version("PySide6-Essentials")
    assert {"xcb", "offscreen"} <= set(report["qt"]["plugins_available"])
    assert report["system"]["distribution"] == "Fedora Linux 40"
    assert [f["name"] for f in report["folders"]] == ["settings", "state", "logs", "cache"]
    assert all(f["writable"] and not f["exists"] for f in report["folders"])
    json.dumps(report)  # --json prints it as it is


def test_missing_libraries_come_with_the_install_command_of_this_distribution(backend: dict) -> None:
    report = collect(backend, system=fake({"DISPLAY": ":0"}, absent=("libxcb-icccm.so.4",)))
    assert report["libraries"]["xcb"] == {"missing": ["libxcb-icccm.so.4"], "install": "sudo dnf install xcb-util-wm"}
    assert report["qt"]["plugin"] is None and not report["display"]["ok"]
    assert any("libxcb-icccm.so.4" in p and "sudo dnf install xcb-util-wm" in p for p in report["problems"])
    text = format_report(report)
    assert "xcb: missing libxcb-icccm.so.4" in text and "install: sudo dnf install xcb-util-wm" in text


def test_without_a_display_it_says_so_and_what_xvfb_run_would_still_need(backend: dict) -> None:
    report = collect(backend, system=fake({}, absent=("libxcb-cursor.so.0",), release={"ID": "ubuntu"}))
    assert len(report["problems"]) == 2
    assert "no display" in report["problems"][0]
    assert "libxcb-cursor.so.0" in report["problems"][1] and "sudo apt-get install libxcb-cursor0" in \
        report["problems"][1]


def test_a_backend_that_cannot_start_is_a_problem_not_a_crash() -> None:
    report = collect(ImportError("libtorch_cpu.so: cannot open shared object file"), system=fake({"DISPLAY": ":0"}))
    assert report["backend"] == {"error": "ImportError: libtorch_cpu.so: cannot open shared object file"}
    assert report["problems"] == ["The backend did not start: ImportError: libtorch_cpu.so: cannot open shared "
                                  "object file."]
    assert "not available: ImportError" in format_report(report)


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  backend: dict) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(blocker / "cache"))  # under a file: can never be made
    report = collect(backend, system=fake({"DISPLAY": ":0"}))
    cache = next(f for f in report["folders"] if f["name"] == "cache")
    assert not cache["writable"]
    assert report["problems"] == [f"The cache folder {blocker / 'cache'} cannot be written."]
    assert "NOT WRITABLE" in format_report(report)


def test_writable_makes_no_folder(tmp_path: Path) -> None:
    assert writable(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists()


def test_the_extras_are_read_from_studio_s_own_metadata() -> None:
    found = {e["name"]: e for e in extras()}
    assert {"export", "dev", "bench"} <= set(found)
    assert found["export"]["installed"] and set(found["export"]["packages"]) == {"onnx", "onnxscript", "onnxruntime"}
    assert found["export"]["packages"]["onnx"] == metadata.version("onnx")
    assert extras("studio-no-such-distribution") == []


def test_the_text_report_has_one_labelled_line_per_part(backend: dict) -> None:
    text = format_report(collect(backend, system=fake({"DISPLAY": ":0"})))
    labels = [line.split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert labels == ["Studio", "Python", "System", "Backend", "Devices", "Qt", "Plugin", "Display", "Libraries",
                      "Folders", "Extras", "Disk", "Problems"]
    assert f"torch {backend['version']}" in text and "Problems   none found" in text


def test_macos_needs_no_display_server_or_x11_libraries(backend: dict) -> None:
    mac = System(env={}, platform="darwin", has_library=lambda name: False, os_release=lambda: {}, as_root=False)
    report = collect(backend, system=mac)
    assert report["qt"]["plugin"] == "cocoa" and report["display"]["ok"] and report["libraries"] == {}
    assert report["problems"] == []
    assert "Libraries  (not needed on this system)" in format_report(report)


def test_gpus_are_listed_with_their_memory_and_the_cuda_build(backend: dict) -> None:
    gib = 1 << 30
    gpu = {**backend, "build": {**backend["build"], "cuda": "12.8", "cuda_available": True},  # no GPU here: as one says
           "devices": [*backend["devices"], {"id": "cuda:0", "kind": "cuda", "name": "NVIDIA H100 80GB HBM3",
                                              "total_memory_bytes": 80 * gib, "free_memory_bytes": 79 * gib,
                                              "bf16": True, "fp16": True}]}
    text = format_report(collect(gpu, system=fake({"DISPLAY": ":0"})))
    assert "built for CUDA 12.8; usable accelerators: cuda" in text
    assert "cuda:0: NVIDIA H100 80GB HBM3, 80.0 GiB, 79.0 GiB free" in text
