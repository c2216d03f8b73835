"""Architectures registered by the user from a Python file chosen on purpose (REQ-M23).

The file imports ``register_model`` (and ``Param``) from ``studio.backend.pytorch.models`` and
decorates its builder functions. Files are never discovered automatically. Loading is a
transaction: if the file cannot be read or imported, raises while registering, registers
nothing, or a new model fails its forward/backward check (:func:`check_model`), the registry is
put back exactly as it was and a ``model.plugin_failed`` error names the file and the cause
(chained); a name already taken is ``registry.duplicate``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from studio.backend.core.errors import ModelError, StudioError
from studio.backend.pytorch.models.checks import check_model
from studio.backend.pytorch.models.registry import registry_snapshot, restore_registry

__all__ = ["load_user_models"]


def _fail(path: Path, what: str, code: str = "model.plugin_failed") -> ModelError:
    return ModelError(
        f"Models file {str(path)!r} {what}; nothing from it was registered.",
        code=code,
        field="path",
        value=str(path),
        hint="Fix the file and load it again.",
    )


def load_user_models(path: str | os.PathLike[str], *, reload: bool = False) -> tuple[str, ...]:
    """Import ``path`` and return the names of the models it registered, sorted.

    With ``reload=True`` the models an earlier load of the same file registered are dropped first,
    so an edited file can be loaded again (still all-or-nothing).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise _fail(file, "does not exist or is not a file")
    if file.suffix != ".py":
        raise _fail(file, "is not a Python file (.py)")
    file = file.resolve()
    module_name = "studio_user_models_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    before = registry_snapshot()
    try:
        if reload:
            restore_registry({n: i for n, i in before.items() if i.source != str(file)})
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise _fail(file, "cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        after = registry_snapshot()
        added = tuple(sorted(n for n in after if after[n] is not before.get(n)))
        if not added:
            raise _fail(file, "registers no model (decorate a builder function with @register_model)")
        for name in added:
            after[name] = dataclasses.replace(after[name], source=str(file))
        restore_registry(after)
        for name in added:
            for kind in after[name].input_kinds:
                check_model(name, kind)
        return added
    except BaseException as exc:
        restore_registry(before)
        sys.modules.pop(module_name, None)
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, ModelError) and exc.code == "model.plugin_failed" and exc.__cause__ is None:
            raise
        detail = exc.message if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, StudioError) and exc.code == "registry.duplicate" else "model.plugin_failed"
        raise _fail(file, f"could not be loaded ({detail})", code) from exc
