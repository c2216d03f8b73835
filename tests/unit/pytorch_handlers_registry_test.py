"""Handler registry: registration, lookup, lazy backends, entry points (REQ-H02, REQ-H03)."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib import metadata

import pytest

from studio.backend.core.errors import (
    DuplicateHandlerError,
    RegistryError,
    UnknownBackendError,
    UnknownOperationError,
    ValidationError,
)
from studio.backend.core.registry import ENTRY_POINT_GROUP, HandlerRegistry


def _echo(request, *, events=None, control=None):
    return ("echo", request)


def _other(request, *, events=None, control=None):
    return ("other", request)


@pytest.mark.req("REQ-H02")
def test_lookup_returns_the_registered_handler() -> None:
    reg = HandlerRegistry(discover_entry_points=False)
    reg.register("toy", "train", _echo)
    assert reg.get("toy", "train") is _echo
    assert reg.call("toy", "train", 7) == ("echo", 7)


@pytest.mark.req("REQ-H02")
def test_registering_a_key_twice_is_an_error_unless_replacing_on_purpose() -> None:
    reg = HandlerRegistry(discover_entry_points=False)
    reg.register("toy", "train", _echo)
    with pytest.raises(DuplicateHandlerError) as info:
        reg.register("toy", "train", _other)
    assert info.value.code == "registry.duplicate" and "replace=True" in str(info.value)
    assert reg.get("toy", "train") is _echo  # nothing changed
    reg.register("toy", "train", _other, replace=True)
    assert reg.get("toy", "train") is _other


@pytest.mark.req("REQ-H02")
@pytest.mark.parametrize("backend,operation,handler", [("", "train", _echo), ("toy", " x", _echo),
                                                       ("toy", "train", 42)])
def test_bad_registrations_are_refused(backend, operation, handler) -> None:
    reg = HandlerRegistry(discover_entry_points=False)
    with pytest.raises(ValidationError):
        reg.register(backend, operation, handler)
    assert reg.backends() == []


@pytest.mark.req("REQ-H03")
def test_unknown_backend_and_operation_list_what_is_available() -> None:
    reg = HandlerRegistry(discover_entry_points=False)
    reg.register("toy", "train", _echo)
    reg.register("toy", "evaluate", _echo)
    with pytest.raises(UnknownBackendError) as info:
        reg.get("jax", "train")
    assert "toy" in info.value.message and info.value.code == "registry.unknown_backend"
    with pytest.raises(UnknownOperationError) as info:
        reg.get("toy", "fly")
    assert "evaluate, train" in info.value.message and info.value.value == "fly"


@pytest.mark.req("REQ-H03")
def test_listing_is_deterministic_and_sorted() -> None:
    reg = HandlerRegistry(discover_entry_points=False)
    for op in ("train", "evaluate", "predict", "distill"):
        reg.register("zeta", op, _echo)
        reg.register("alpha", op, _echo)
    assert reg.backends() == ["alpha", "zeta"]
    assert reg.operations("zeta") == ["distill", "evaluate", "predict", "train"]


@pytest.mark.req("REQ-H03")
def test_a_backend_is_loaded_only_on_first_lookup() -> None:
    calls = []

    def loader(reg: HandlerRegistry) -> None:
        calls.append(1)
        reg.register("lazy", "train", _echo)

    reg = HandlerRegistry(discover_entry_points=False)
    reg.add_backend("lazy", loader)
    assert reg.backends() == ["lazy"] and calls == [] and not reg.is_loaded("lazy")
    assert reg.get("lazy", "train") is _echo
    reg.get("lazy", "train")
    assert calls == [1]


@pytest.mark.req("REQ-H03")
def test_a_failing_backend_is_a_clear_error_and_leaves_the_registry_as_it_was() -> None:
    def loader(reg: HandlerRegistry) -> None:
        reg.register("broken", "train", _echo)
        raise ImportError("No module named 'jaxlib'")

    reg = HandlerRegistry(discover_entry_points=False)
    reg.register("toy", "train", _echo)
    reg.add_backend("broken", loader)
    with pytest.raises(RegistryError) as info:
        reg.get("broken", "train")
    assert info.value.code == "registry.backend_failed" and "jaxlib" in info.value.message
    assert isinstance(info.value.__cause__, ImportError)
    assert reg.operations("toy") == ["train"]


@pytest.mark.req("REQ-H03")
def test_importing_the_registry_does_not_import_torch_but_the_pytorch_backend_does() -> None:
    code = (
        "import sys\n"
        "from studio.backend.core.registry import default_registry\n"
        "reg = default_registry()\n"
        "print('pytorch' in reg.backends(), 'torch' in sys.modules)\n"
        "reg.get('pytorch', 'train')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


@pytest.mark.req("REQ-H03")
def test_third_party_backends_register_through_the_entry_point_group(monkeypatch) -> None:
    module = types.ModuleType("studio_toy_backend")

    def register(reg: HandlerRegistry) -> None:
        reg.register("toy", "predict", _echo)

    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "studio_toy_backend", module)
    real = metadata.entry_points

    def fake_entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            found.append(metadata.EntryPoint("toy", "studio_toy_backend:register", ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    reg = HandlerRegistry()
    assert "toy" in reg.backends() and "pytorch" in reg.backends()  # our own entry point is installed too
    assert reg.get("toy", "predict") is _echo
