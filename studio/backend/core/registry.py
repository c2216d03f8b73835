"""The handler registry: (backend, operation) -> handler (REQ-H02, REQ-H03).

Backends are known by a *loader*: a ``"module:function"`` string (or a callable) that, when
first needed, registers the backend's handlers. Nothing heavy is imported until a handler of
that backend is looked up, so importing the registry (and the window) does not import torch.
Third-party backends declare a loader in the ``studio.backends`` entry-point group.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any

from studio.backend.core.errors import (
    DuplicateHandlerError,
    RegistryError,
    UnknownBackendError,
    UnknownOperationError,
    ValidationError,
)
from studio.backend.core.handler import Handler

__all__ = ["HandlerRegistry", "ENTRY_POINT_GROUP", "BUILTIN_BACKENDS", "default_registry", "OPERATIONS"]

ENTRY_POINT_GROUP = "studio.backends"
BUILTIN_BACKENDS = {"pytorch": "studio.backend.pytorch.handlers:register"}
OPERATIONS = ("catalogue", "inspect_data", "inspect_model", "train", "evaluate", "predict", "distill", "save", "load", "export",
              "release", "environment")

Loader = Callable[["HandlerRegistry"], None]


class HandlerRegistry:
    """Thread-safe map of handlers, with lazily loaded backends."""

    def __init__(self, *, discover_entry_points: bool = True) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._loaders: dict[str, str | Loader] = {}
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        self._discover = discover_entry_points
        self._discovered = False

    # -- registration ---------------------------------------------------------------------
    def register(self, backend: str, operation: str, handler: Handler, *, replace: bool = False) -> None:
        """Register ``handler``; a key registered twice is an error unless ``replace=True``."""
        _check_name("backend", backend)
        _check_name("operation", operation)
        if not callable(handler):
            raise ValidationError(
                f"The handler for {backend}/{operation} must be callable, not {type(handler).__name__}.",
                field="handler",
            )
        with self._lock:
            key = (backend, operation)
            if key in self._handlers and not replace:
                raise DuplicateHandlerError(
                    f"A handler for {backend}/{operation} is already registered.",
                    field="operation",
                    value=f"{backend}/{operation}",
                    hint="Pass replace=True to replace it on purpose.",
                )
            self._handlers[key] = handler
            self._loaded.add(backend)

    def add_backend(self, name: str, loader: str | Loader, *, replace: bool = False) -> None:
        """Declare a backend whose handlers ``loader`` registers on first use."""
        _check_name("backend", name)
        with self._lock:
            if name in self._loaders and not replace and self._loaders[name] != loader:
                raise DuplicateHandlerError(
                    f"A backend named {name!r} is already declared.",
                    field="backend",
                    value=name,
                    hint="Pick another name or pass replace=True.",
                )
            self._loaders[name] = loader

    # -- lookup -----------------------------------------------------------------------------
    def get(self, backend: str, operation: str) -> Handler:
        with self._lock:
            self._ensure_loaded(backend)
            try:
                return self._handlers[(backend, operation)]
            except KeyError:
                ops = self.operations(backend)
                raise UnknownOperationError(
                    f"The {backend} backend has no operation {operation!r}; "
                    f"available: {', '.join(ops) or 'none'}.",
                    field="operation",
                    value=operation,
                    hint=f"Use one of: {', '.join(ops)}.",
                ) from None

    def call(self, backend: str, operation: str, request: Any, **kwargs: Any) -> Any:
        return self.get(backend, operation)(request, **kwargs)

    def backends(self) -> list[str]:
        """Every known backend, loaded or not, sorted."""
        with self._lock:
            self._discover_entry_points()
            return sorted(set(self._loaders) | {b for b, _ in self._handlers})

    def operations(self, backend: str) -> list[str]:
        with self._lock:
            self._ensure_loaded(backend)
            return sorted(op for b, op in self._handlers if b == backend)

    def is_loaded(self, backend: str) -> bool:
        return backend in self._loaded

    # -- internals -----------------------------------------------------------------------------
    def _discover_entry_points(self) -> None:
        if self._discovered or not self._discover:
            return
        self._discovered = True
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            self._loaders.setdefault(ep.name, ep.value)

    def _ensure_loaded(self, backend: str) -> None:
        if backend in self._loaded:
            return
        self._discover_entry_points()
        loader = self._loaders.get(backend)
        if loader is None:
            known = self.backends()
            raise UnknownBackendError(
                f"There is no backend named {backend!r}; available: {', '.join(known) or 'none'}.",
                field="backend",
                value=backend,
                hint=f"Use one of: {', '.join(known)}.",
            )
        before = dict(self._handlers)
        try:
            _resolve(loader)(self)
        except Exception as exc:
            self._handlers = before  # a failed backend leaves the registry as it was
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(
                f"The {backend} backend failed to load: {exc}.",
                code="registry.backend_failed",
                field="backend",
                value=backend,
                hint="Check that its packages are installed (see the README's set-up).",
            ) from exc
        self._loaded.add(backend)


def _resolve(loader: str | Loader) -> Loader:
    if callable(loader):
        return loader
    module_name, _, attr = loader.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr or "register")


def _check_name(what: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValidationError(f"A {what} name must be non-empty text without surrounding spaces, not {name!r}.",
                              field=what, value=repr(name))


_default: HandlerRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> HandlerRegistry:
    """The process-wide registry with the built-in backends declared (not loaded)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = HandlerRegistry()
            for name, loader in BUILTIN_BACKENDS.items():
                _default.add_backend(name, loader)
        return _default
