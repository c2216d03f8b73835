"""Prediction: mode, batching, probabilities, preprocessing, agreement with evaluate (REQ-T17..T21)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from studio.backend.core.errors import DataError
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import (
    DataSpec,
    EvaluateRequest,
    ModelSpec,
    PredictRequest,
    TrainConfig,
    TrainRequest,
)
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch.data import Preprocessing
from studio.backend.pytorch.inference import run_model
from studio.backend.pytorch.model_store import TrainedModel, store


class Recorder(nn.Module):
    """Sums each input row, with dropout, and records batch sizes and the grad/inference mode."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(torch.ones(1))
        self.batches: list[int] = []
        self.modes: list[tuple[bool, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        self.modes.append((self.training, torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        flat = x.reshape(len(x), -1)
        return self.drop(flat.sum(1, keepdim=True) * self.scale)


def _put(module: nn.Module, shape: tuple[int, ...], task: str = "regression", outputs: int = 1,
         prep: Preprocessing | None = None, classes: tuple[str, ...] = ()) -> str:
    prep = prep or Preprocessing(input_kind="vector", input_shape=shape)
    return store.put(TrainedModel(module=module, spec=ModelSpec(name="linear"), input_shape=shape,
                                  num_outputs=outputs, task=task, class_names=classes, preprocessing=prep.to_dict()))


@pytest.mark.req("REQ-T17")
def test_predict_runs_in_eval_and_inference_mode_and_restores_the_mode() -> None:
    model = Recorder().train()
    x = torch.rand(10, 3)
    first = run_model(model, x, batch_size=4)
    second = run_model(model, x, batch_size=4)
    assert torch.equal(first, second)  # dropout off: eval mode
    assert torch.allclose(first[:, 0], x.sum(1))
    assert set(model.modes) == {(False, True, False)}
    assert model.training  # the previous mode is back
    model.eval()
    run_model(model, x)
    assert not model.training


@pytest.mark.req("REQ-T18")
def test_inputs_of_any_length_go_in_batches_of_the_configured_size_in_input_order() -> None:
    model = Recorder()
    x = torch.arange(1000 * 3, dtype=torch.float32).reshape(1000, 3)
    out = run_model(model, x, batch_size=64)
    assert max(model.batches) == 64 and sum(model.batches) == 1000 and len(model.batches) == 16
    assert torch.equal(out[:, 0], x.sum(1))  # order kept
    assert run_model(model, x[:0]).numel() == 0
    handle = _put(Recorder(), (3,))
    result = default_registry().call("pytorch", "predict", PredictRequest(model=handle, inputs=x.tolist(),
                                                                          batch_size=100))
    assert [v[0] for v in result.values] == pytest.approx(x.sum(1).tolist())


@pytest.mark.req("REQ-T19")
def test_classification_gives_probabilities_summing_to_one_with_names_and_top_k() -> None:
    linear = nn.Linear(2, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        linear.bias.zero_()
    handle = _put(linear, (2,), task="classification", outputs=3, classes=("cat", "dog", "eel"))
    rows = [[3.0, 0.0], [0.0, 2.0], [-2.0, -2.0]]
    result = default_registry().call("pytorch", "predict", PredictRequest(model=handle, inputs=rows, top_k=2))
    probs = np.array(result.probabilities)
    logits = np.array(rows) @ np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]).T
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)  # softmax by hand
    assert np.allclose(probs, expected, atol=1e-6) and np.allclose(probs.sum(1), 1.0)
    assert result.labels == ("cat", "dog", "eel")
    assert [name for name, _ in result.top_k[0]] == ["cat", "dog"] and len(result.top_k[2]) == 2


@pytest.mark.req("REQ-T19", "REQ-T20")
def test_regression_values_come_back_in_the_targets_original_units() -> None:
    zero = nn.Linear(2, 1)
    nn.init.zeros_(zero.weight)
    nn.init.zeros_(zero.bias)
    prep = Preprocessing(input_kind="vector", input_shape=(2,), x_mean=(1.0, 2.0), x_std=(2.0, 4.0),
                         y_mean=(150.0,), y_std=(25.0,))
    handle = _put(zero, (2,), prep=prep)
    result = default_registry().call("pytorch", "predict", PredictRequest(model=handle, inputs=[[9.0, 9.0]] * 3))
    assert result.values == ((150.0,),) * 3  # a zero output in scaled units is the target's mean


@pytest.mark.req("REQ-T20")
def test_the_training_preprocessing_is_applied_to_raw_inputs() -> None:
    prep = Preprocessing(input_kind="vector", input_shape=(3,), x_mean=(1.0, 2.0, 3.0), x_std=(2.0, 2.0, 2.0))
    handle = _put(Recorder(), (3,), prep=prep)
    result = default_registry().call("pytorch", "predict", PredictRequest(model=handle, inputs=[[5.0, 6.0, 7.0]]))
    assert result.values[0][0] == pytest.approx((4 + 4 + 4) / 2)  # sum of (x - mean) / std


@pytest.mark.req("REQ-T20")
@pytest.mark.parametrize("rows,received", [([[1.0, 2.0]], "(1, 2)"), ([[[1.0, 2.0, 3.0]]], "(1, 1, 3)")])
def test_inputs_of_the_wrong_shape_state_expected_and_received(rows, received) -> None:
    handle = _put(Recorder(), (3,))
    with pytest.raises(DataError) as info:
        default_registry().call("pytorch", "predict", PredictRequest(model=handle, inputs=rows))
    assert "(N, 3)" in info.value.message and received in info.value.message
    assert info.value.code == "data.bad_shape"


@pytest.mark.req("REQ-T21")
def test_predict_is_deterministic_and_agrees_with_evaluate() -> None:
    registry = default_registry()
    spec = DataSpec(name="iris")
    trained = registry.call("pytorch", "train", TrainRequest(data=spec, model=ModelSpec(name="mlp"),
                                                              config=TrainConfig(epochs=5, batch_size=16)))
    bundle = data_lib.load_data(spec)
    splits = data_lib.split_data(bundle, spec.val_fraction, spec.test_fraction, spec.seed)
    rows = bundle.x[splits.val].tolist()
    first = registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=rows))
    again = registry.call("pytorch", "predict", PredictRequest(model=trained.model, inputs=rows))
    assert first == again
    evaluated = registry.call("pytorch", "evaluate", EvaluateRequest(model=trained.model, data=spec))
    truth = bundle.y[splits.val].numpy()
    predicted = np.array(first.indices)
    assert (predicted == truth).mean() == pytest.approx(evaluated.metrics["accuracy"], abs=1e-12)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    assert confusion.tolist() == [list(r) for r in evaluated.confusion]
