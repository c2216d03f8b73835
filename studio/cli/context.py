"""What every command shares: the registry and its catalogue, the output streams, the log file,
the distributed rank, and Ctrl-C turned into a clean cancel."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from studio.backend.core.handler import RunControl
from studio.backend.core.registry import HandlerRegistry, default_registry

__all__ = ["BACKEND", "Context"]

BACKEND = "pytorch"
log = logging.getLogger("studio.cli")


class _Quiet:
    """A stream that goes quiet, instead of failing the run, once its reader has gone
    (``studio train ... | head``): output is never a reason to lose a training run."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                return self._stream.write(text)
            except (BrokenPipeError, ValueError):
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                self._silence()

    def _silence(self) -> None:
        self.closed_by_reader = True
        try:  # so the interpreter's own flush at exit does not complain either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (ValueError, AttributeError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Context:
    """Streams, registry and run state of one ``studio`` invocation."""

    def __init__(self, *, stdout: IO[str], stderr: IO[str], registry: HandlerRegistry | None = None,
                 json_mode: bool = False) -> None:
        self.stdout: IO[str] = _Quiet(stdout)  # type: ignore[assignment]
        self.stderr: IO[str] = _Quiet(stderr)  # type: ignore[assignment]
        self.registry = registry if registry is not None else default_registry()
        self.json_mode = json_mode
        self.rank = int(os.environ.get("RANK", "0") or 0)  # under torchrun only rank 0 speaks and writes
        self.argv: list[str] = []  # the arguments after "studio"
        self.run_started = False
        self.interrupted = False
        self.log_file: str | None = None
        self._catalogue: Any = None

    # -- output ---------------------------------------------------------------------------------------
    @property
    def speaks(self) -> bool:
        return self.rank == 0

    def out(self, text: str = "") -> None:
        if self.speaks:
            print(text, file=self.stdout, flush=True)

    def err(self, text: str) -> None:
        prefix = f"[rank {self.rank}] " if self.rank else ""
        print(prefix + text, file=self.stderr, flush=True)

    def emit_json(self, contract: Any) -> None:
        if self.speaks:
            self.out(contract.to_json())

    # -- backend --------------------------------------------------------------------------------------
    def handler(self, operation: str) -> Any:
        return self.registry.get(BACKEND, operation)

    def catalogue(self) -> Any:
        if self._catalogue is None:
            from studio.backend.core.requests import CatalogueRequest

            self._catalogue = self.handler("catalogue")(CatalogueRequest(include_devices=False))
        return self._catalogue

    # -- log file -------------------------------------------------------------------------------------
    def log_start(self, command: str, argv: list[str]) -> None:
        if not self.speaks:
            return  # only rank 0 writes logs
        try:
            from studio.logs import setup_logging

            self.log_file = str(setup_logging())
        except OSError:
            self.log_file = None
        log.info("studio %s", " ".join(argv))

    def log_hint(self) -> str:
        return f"Details are in {self.log_file}." if self.log_file else "Details are in the log file."

    # -- Ctrl-C -------------------------------------------------------------------------------------
    @contextmanager
    def cancel_on_interrupt(self, control: RunControl) -> Iterator[None]:
        """The first Ctrl-C (or SIGTERM) cancels the run cleanly; a second Ctrl-C aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: Any) -> None:
            if self.interrupted and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.interrupted = True
            control.cancel()
            if self.speaks:
                self.err("Stopping after the current step (Ctrl-C again to abort without saving)...")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
