"""Checked export to TorchScript and ONNX (REQ-T23)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from studio.backend.core.errors import ExportError, ValidationError
from studio.backend.core.results import ExportResult
from studio.backend.pytorch.serialization import export_model, export_onnx, export_torchscript
from studio.backend.pytorch.serialization.atomic import TMP_MARKER
from studio.backend.pytorch.serialization.export import CHECK_BATCH_SIZES, _rows

pytestmark = pytest.mark.filterwarnings("ignore:.*torch\\.jit.*:DeprecationWarning")  # torch.jit.load in the checks


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class Stateful(nn.Module):
    """Depends on a Python counter the export freezes: the exported file cannot agree with it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(10, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.lin(x) * self.calls


def trained(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """A few steps of training so batch-norm statistics and weights are not at their defaults."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(16, *shape)).pow(2).mean().backward()
        opt.step()
    return model


def max_diff(a: torch.Tensor, b: torch.Tensor | np.ndarray) -> float:
    return (a.double() - torch.as_tensor(b).double()).abs().max().item()


def no_temps(folder: Path) -> bool:
    return not any(TMP_MARKER in p.name for p in folder.iterdir())


@pytest.mark.req("REQ-T23")
@pytest.mark.parametrize("model_cls, shape", [(MLP, (10,)), (SmallCNN, (1, 8, 8))])
def test_torchscript_export_is_checked_and_loads_at_any_batch_size(tmp_path: Path, model_cls: type, shape: tuple) -> None:
    model = trained(model_cls(), shape)
    example = torch.randn(4, *shape)
    result = export_torchscript(model, example, tmp_path / "model.pt")

    assert isinstance(result, ExportResult) and result.format == "torchscript"
    assert result.path == str(tmp_path / "model.pt") and result.size_bytes == (tmp_path / "model.pt").stat().st_size
    assert 0.0 <= result.max_abs_diff <= 1e-4
    assert "torch.jit.load" in result.loader_snippet and result.path in result.loader_snippet
    assert no_temps(tmp_path)
    loaded = torch.jit.load(result.path)
    model.eval()
    with torch.no_grad():
        for batch in (1, 3, 7, 33):
            x = torch.randn(batch, *shape)
            assert max_diff(model(x), loaded(x)) <= 1e-4
        # the reported figure is the largest difference over the documented check inputs
        samples = [(example,), *(_rows((example,), n, seed=n) for n in CHECK_BATCH_SIZES)]
        independent = max(max_diff(model(*s), loaded(*s)) for s in samples)
    assert result.max_abs_diff == pytest.approx(independent, abs=1e-9)


@pytest.mark.req("REQ-T23")
@pytest.mark.parametrize("model_cls, shape, batch", [(MLP, (10,), 4), (SmallCNN, (1, 8, 8), 1)])
def test_onnx_export_has_a_dynamic_batch_axis_and_matches(tmp_path: Path, model_cls: type, shape: tuple,
                                                          batch: int) -> None:
    model = trained(model_cls(), shape)
    example = torch.randn(batch, *shape)
    result = export_onnx(model, example, tmp_path / "model.onnx")

    assert result.format == "onnx" and 0.0 <= result.max_abs_diff <= 1e-4
    assert result.size_bytes == (tmp_path / "model.onnx").stat().st_size
    assert "onnxruntime" in result.loader_snippet and "'input'" in result.loader_snippet
    assert no_temps(tmp_path)
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and isinstance(inp.shape[0], str)  # symbolic: the batch axis is dynamic
    assert isinstance(session.get_outputs()[0].shape[0], str)
    model.eval()
    with torch.no_grad():
        for n in (1, 5, 7, 32):
            x = torch.randn(n, *shape)
            (out,) = session.run(None, {"input": x.numpy()})
            assert out.shape[0] == n
            assert max_diff(model(x), out) <= 1e-4


@pytest.mark.req("REQ-T23")
@pytest.mark.parametrize("fmt, name", [("torchscript", "model.pt"), ("onnx", "model.onnx")])
def test_a_failed_check_leaves_no_file_and_keeps_the_previous_one(tmp_path: Path, fmt: str, name: str) -> None:
    target = tmp_path / name
    with pytest.raises(ExportError) as info:
        export_model(Stateful(), torch.randn(3, 10), target, fmt)
    assert info.value.code == "export.mismatch" and info.value.value > 1e-4
    assert "nothing was written" in info.value.message
    assert not target.exists() and no_temps(tmp_path)

    target.write_bytes(b"the previous export")
    with pytest.raises(ExportError):
        export_model(Stateful(), torch.randn(3, 10), target, fmt)
    assert target.read_bytes() == b"the previous export" and no_temps(tmp_path)


@pytest.mark.req("REQ-T23")
def test_export_uses_eval_mode_and_restores_every_module_mode(tmp_path: Path) -> None:
    model = trained(MLP(), (10,))
    model.train()
    model.body[1].eval()  # a frozen batch norm stays frozen, the rest stays in training
    before = [m.training for m in model.modules()]
    result = export_torchscript(model, torch.randn(5, 10), tmp_path / "m.pt")
    assert [m.training for m in model.modules()] == before
    loaded = torch.jit.load(result.path)
    x = torch.randn(6, 10)
    model.eval()
    with torch.no_grad():  # the export is the eval-mode model: dropout off, running statistics used
        assert max_diff(model(x), loaded(x)) <= 1e-4

    stateful = Stateful().train()
    with pytest.raises(ExportError):
        export_torchscript(stateful, torch.randn(2, 10), tmp_path / "s.pt")
    assert stateful.training and stateful.lin.training


@pytest.mark.req("REQ-T23")
def test_bad_export_requests_are_refused_before_any_work(tmp_path: Path) -> None:
    model = MLP()
    cases = [
        (lambda: export_torchscript(model, torch.randn(2, 10), tmp_path / "m.pt", tolerance=-1.0), "tolerance"),
        (lambda: export_onnx(model, torch.randn(2, 10), tmp_path / "m.pt"), "path"),
        (lambda: export_torchscript(model, torch.tensor(1.0), tmp_path / "m.pt"), "example_input"),
        (lambda: export_model(model, torch.randn(2, 10), tmp_path / "m.pt", "tflite"), "format"),
        (lambda: export_torchscript("not a model", torch.randn(2, 10), tmp_path / "m.pt"), "model"),
        (lambda: export_onnx(model, torch.randn(2, 10), tmp_path / "missing" / "m.onnx"), "path"),
    ]
    for call, field in cases:
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field == field
    assert list(tmp_path.iterdir()) == []


@pytest.mark.req("REQ-T23")
def test_a_model_that_cannot_be_traced_is_an_export_error(tmp_path: Path) -> None:
    class DictOut(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"y": x * 2}

    with pytest.raises(ValidationError) as info:
        export_torchscript(DictOut(), torch.randn(2, 3), tmp_path / "d.pt")
    assert "tuple of tensors" in info.value.message

    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(ExportError) as info:
        export_torchscript(Broken(), torch.randn(2, 3), tmp_path / "b.pt")
    assert info.value.code == "export.failed" and "boom" in info.value.message
    assert isinstance(info.value.__cause__, RuntimeError)
    assert list(tmp_path.iterdir()) == []
