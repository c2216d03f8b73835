"""The layers stay apart: the UI never imports torch, the backend never imports Qt, the core neither.

An AST scan of every module (static imports and ``importlib.import_module("...")`` with a
literal name), so a violation fails before anything runs.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "studio"
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "qtpy", "superqt")
TORCH = ("torch", "torchvision", "studio.backend.pytorch")

RULES = [
    ("studio/ui", TORCH, "the UI reaches the backend only through handlers and core contracts"),
    ("studio/backend", QT, "the backend must run headless, with no Qt"),
    ("studio/backend/core", TORCH + QT, "the core contracts are framework-agnostic"),
    ("studio/doctor", TORCH + QT, "studio doctor reports on a machine whose torch or Qt is broken"),
    ("studio/preflight", TORCH + QT + ("numpy", "platformdirs", "studio.backend", "studio.ui"),
     "the preflight runs before anything is installed (make studio) and before Qt: standard library only"),
]


def imported_names(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(folder: str, banned: tuple[str, ...]) -> list[str]:
    base = ROOT.parent / folder
    out = []
    for path in sorted(base.rglob("*.py")):
        for line, name in imported_names(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                out.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("folder,banned,why", RULES, ids=[r[0] for r in RULES])
def test_layers_do_not_import_across(folder: str, banned: tuple[str, ...], why: str) -> None:
    assert (ROOT.parent / folder).is_dir()
    found = violations(folder, banned)
    assert not found, f"{why}:\n" + "\n".join(found)


def test_the_checker_catches_a_violation(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom torch import nn\nimport importlib\nimportlib.import_module('PySide6.QtCore')\n")
    names = [n for _, n in imported_names(bad)]
    assert names == ["os", "torch", "importlib", "PySide6.QtCore"] or set(names) == {
        "os", "torch", "importlib", "PySide6.QtCore"}
