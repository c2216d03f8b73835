"""Checked export to TorchScript and ONNX (REQ-T23).

Each export is produced in memory, written to a temporary file beside the target, loaded back
with the runtime a user would use (``torch.jit.load`` / onnxruntime) and compared with the live
model on the example and on batches of 1 and 7 rows drawn from it. Only when the largest
absolute difference is within ``tolerance`` is the file renamed into place, so a failed check
leaves the target as it was (absent, or the previous export). The model is exported in eval
mode; every submodule's previous mode is restored afterwards.

ONNX uses ``torch.onnx.export(..., dynamo=True)`` with a dynamic batch axis named ``batch``.
Models whose ONNX form exceeds 2 GB (external data files) are not supported.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from studio.backend.core.errors import ExportError, StudioError, ValidationError
from studio.backend.core.results import ExportResult
from studio.backend.pytorch.serialization.atomic import atomic_write, check_target

__all__ = ["export_model", "export_torchscript", "export_onnx", "CHECK_BATCH_SIZES"]

CHECK_BATCH_SIZES = (1, 7)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".torchscript")
ONNX_SUFFIXES = (".onnx",)
Inputs = tuple[torch.Tensor, ...]
Snippet = Callable[[str], str]  # the written path -> Python that loads it


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode; restore each one's own mode afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _check_args(model: nn.Module, example: torch.Tensor | Sequence[torch.Tensor], tolerance: float) -> Inputs:
    if not isinstance(model, nn.Module):
        raise ValidationError(f"Expected a torch.nn.Module to export, not {type(model).__name__}.", field="model")
    inputs = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    if not inputs or not all(isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] >= 1 for x in inputs):
        raise ValidationError("The example input must be a tensor (or tuple of tensors) with a batch dimension "
                              "of at least one row.", field="example_input")
    if len({x.shape[0] for x in inputs}) != 1:
        raise ValidationError("Every example input must have the same batch size.", field="example_input")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise ValidationError(f"The tolerance must be a non-negative number, not {tolerance!r}.", field="tolerance",
                              value=repr(tolerance))
    return inputs


def _device_of(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _rows(inputs: Inputs, n: int, seed: int) -> Inputs:
    """A batch of ``n`` rows drawn from the example (float inputs slightly perturbed)."""
    gen = torch.Generator().manual_seed(seed)
    index = torch.randint(0, inputs[0].shape[0], (n,), generator=gen)
    out = []
    for x in inputs:
        y = x[index.to(x.device)]
        if y.is_floating_point():
            y = y + 0.01 * torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
        out.append(y)
    return tuple(out)


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in out):
        return list(out)
    raise ValidationError(f"The model returns a {type(out).__name__}; export needs a tensor or a tuple of tensors.",
                          field="model")


def _max_abs_diff(expected: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    if len(expected) != len(got):
        return math.inf
    worst = 0.0
    for a, b in zip(expected, got):
        a, b = a.detach().cpu().double(), torch.as_tensor(b).detach().cpu().double()
        if a.shape != b.shape:
            return math.inf
        if a.numel():
            both_nan = a.isnan() & b.isnan()
            diff = torch.where(both_nan, torch.zeros_like(a), (a - b).abs().nan_to_num(nan=math.inf))
            worst = max(worst, diff.max().item())
    return worst


def _checked_export(model: nn.Module, example: torch.Tensor | Sequence[torch.Tensor], path: str | os.PathLike[str],
                    fmt: str, suffixes: tuple[str, ...], tolerance: float,
                    produce: Callable[[Inputs], Callable[[Path], object]],
                    run_file: Callable[[Path, Inputs], list[torch.Tensor]], snippet: Callable[[str, Inputs], str],
                    custom_snippet: Snippet | None = None) -> ExportResult:
    inputs = _check_args(model, example, tolerance)
    check_target(path, suffixes=suffixes, error_cls=ExportError)
    measured: list[float] = []
    with eval_mode(model):
        device = _device_of(model)
        inputs = tuple(x.to(device) for x in inputs)
        samples = [inputs, *(_rows(inputs, n, seed=n) for n in CHECK_BATCH_SIZES)]
        try:
            with torch.no_grad():
                expected = [_flatten(model(*s)) for s in samples]
        except StudioError:
            raise
        except Exception as exc:
            raise ExportError(f"The model failed on the example input ({type(exc).__name__}: {exc}); nothing was "
                              "exported.", field="example_input") from exc
        try:
            write = produce(inputs)
        except StudioError:
            raise
        except Exception as exc:
            raise ExportError(f"The model could not be exported to {fmt}: {type(exc).__name__}: {exc}".rstrip(".")
                              + ".", field="model", hint="Models with data-dependent Python control flow may need "
                              "changes before they can be exported.") from exc

        def verify(tmp: Path) -> None:
            for sample, want in zip(samples, expected):
                try:
                    got = run_file(tmp, sample)
                except Exception as exc:
                    raise ExportError(f"The written {fmt} file could not be run at batch size {sample[0].shape[0]}: "
                                      f"{exc}", code="export.mismatch", field="path", value=str(path)) from exc
                measured.append(_max_abs_diff(want, got))
                if not measured[-1] <= tolerance:
                    raise ExportError(
                        f"The {fmt} export differs from the live model by {measured[-1]:.3g} at batch size "
                        f"{sample[0].shape[0]} (allowed {tolerance:g}); nothing was written.",
                        code="export.mismatch", field="path", value=measured[-1],
                        hint="The model may depend on Python state that the export cannot capture.")

        info = atomic_write(path, write, verify_fn=verify, suffixes=suffixes, error_cls=ExportError)
    return ExportResult(path=info.path, format=fmt, size_bytes=info.size_bytes, max_abs_diff=max(measured),
                        loader_snippet=custom_snippet(info.path) if custom_snippet else snippet(info.path, inputs))


def _shape_text(inputs: Inputs) -> str:
    return ", ".join(f"{str(x.dtype).removeprefix('torch.')} of shape (batch, {', '.join(map(str, x.shape[1:]))})"
                     for x in inputs)


# -- TorchScript --------------------------------------------------------------------------------

def export_torchscript(model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor],
                       path: str | os.PathLike[str], tolerance: float = 1e-4, *,
                       metadata: Mapping[str, str] | None = None, snippet: Snippet | None = None) -> ExportResult:
    """Trace ``model`` to TorchScript, write it atomically and check it against the live model.

    ``metadata`` entries are written as ``_extra_files`` (``torch.jit.load(path, _extra_files=...)``
    reads them back); ``snippet`` replaces the generic loader code."""
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}

    def produce(inputs: Inputs) -> Callable[[Path], object]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated upstream; tracer warnings are checked below
            traced = torch.jit.trace(model, inputs, check_trace=False)

        def write(tmp: Path) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(traced, str(tmp), _extra_files=extra)
        return write

    def run_file(tmp: Path, sample: Inputs) -> list[torch.Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(str(tmp), map_location=sample[0].device)
        with torch.no_grad():
            return _flatten(loaded(*sample))

    def generic(path: str, inputs: Inputs) -> str:
        return (f"import torch\nmodel = torch.jit.load({path!r})\n"
                f"output = model(inputs)  # inputs: {_shape_text(inputs)}")

    return _checked_export(model, example_input, path, "torchscript", TORCHSCRIPT_SUFFIXES, tolerance, produce,
                           run_file, generic, snippet)


# -- ONNX ---------------------------------------------------------------------------------------

def _onnx_names(n: int, stem: str) -> list[str]:
    return [stem] if n == 1 else [f"{stem}_{i}" for i in range(n)]


def export_onnx(model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor],
                path: str | os.PathLike[str], tolerance: float = 1e-4, *,
                metadata: Mapping[str, str] | None = None, snippet: Snippet | None = None) -> ExportResult:
    """Export ``model`` to ONNX with a dynamic batch axis, write it atomically and check it with onnxruntime.

    ``metadata`` entries become the model's ``metadata_props`` (onnxruntime:
    ``session.get_modelmeta().custom_metadata_map``); ``snippet`` replaces the generic loader code."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 - needed by torch.onnx's exporter
    except ImportError as exc:
        raise ExportError("ONNX export needs the onnx, onnxscript and onnxruntime packages.",
                          code="export.unavailable", hint="Install them with: pip install 'studio[export]'.") from exc

    def produce(inputs: Inputs) -> Callable[[Path], object]:
        if inputs[0].shape[0] == 1:  # a batch of one would be specialised to a constant size
            inputs = _rows(inputs, 2, seed=0)
        with torch.no_grad():
            n_out = len(_flatten(model(*inputs)))
        batch = torch.export.Dim("batch")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, inputs, dynamo=True, verbose=False, input_names=_onnx_names(len(inputs), "input"),
                output_names=_onnx_names(n_out, "output"), dynamic_shapes=tuple({0: batch} for _ in inputs))
        if program is None:
            raise ExportError("torch.onnx.export returned no program.")
        for key, value in (metadata or {}).items():
            program.model.metadata_props[str(key)] = str(value)
        return lambda tmp: program.save(str(tmp), external_data=False)

    def run_file(tmp: Path, sample: Inputs) -> list[torch.Tensor]:
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        feeds = {i.name: x.detach().cpu().numpy() for i, x in zip(session.get_inputs(), sample)}
        return [torch.from_numpy(o) for o in session.run(None, feeds)]

    def generic(path: str, inputs: Inputs) -> str:
        feeds = ", ".join(f"{n!r}: {n}" for n in _onnx_names(len(inputs), "input"))
        return (f"import onnxruntime as ort\nsession = ort.InferenceSession({path!r})\n"
                f"outputs = session.run(None, {{{feeds}}})  # NumPy inputs: {_shape_text(inputs)}")

    return _checked_export(model, example_input, path, "onnx", ONNX_SUFFIXES, tolerance, produce, run_file, generic,
                           snippet)


def export_model(model: nn.Module, example: torch.Tensor | Sequence[torch.Tensor], path: str | os.PathLike[str],
                 format: Literal["torchscript", "onnx"], tolerance: float = 1e-4, *,
                 metadata: Mapping[str, str] | None = None, snippet: Snippet | None = None) -> ExportResult:
    """Dispatch to :func:`export_torchscript` or :func:`export_onnx`."""
    exporters = {"torchscript": export_torchscript, "onnx": export_onnx}
    if format not in exporters:
        raise ValidationError(f"Unknown export format {format!r}; choose torchscript or onnx.", field="format",
                              value=format)
    return exporters[format](model, example, path, tolerance, metadata=metadata, snippet=snippet)
