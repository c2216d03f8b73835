"""The model zoo (PT-MODELS-001): registry, schemas, families, summaries, features, freezing, export."""

from __future__ import annotations

import ast
import json
import math
import re
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import studio.backend.pytorch.models as M
from studio.backend.core.errors import ModelError
from studio.backend.core.requests import ModelSpec
from studio.backend.core.results import DataSummary, ModelSummary
from studio.backend.pytorch.models.families.mobilenet import DepthwiseSeparable
from studio.backend.pytorch.models.families.resnet import BasicBlock
from studio.backend.pytorch.models.registry import registry_snapshot, restore_registry

FAMILIES = ("cnn1d", "gru", "lenet", "linear", "lstm", "mlp", "mobilenet", "resnet", "transformer")
# Small per-kind shapes keep the suite fast; REQ-M19 uses unusual ones.
SHAPES = {"vector": (10,), "image": (3, 10, 10), "sequence": (8, 3)}
DIGITS_IMAGE, DIGITS_VECTOR = (1, 8, 8), (64,)
CASES = [(info.name, kind) for info in M.list_models() for kind in info.input_kinds]
FAMILY_KIND = {name: M.get_model_info(name).input_kinds[0] for name in FAMILIES}


def build(name: str, kind: str | None = None, outputs: int = 3, seed: int = 0, **hparams: object) -> nn.Module:
    shape = SHAPES[kind or FAMILY_KIND[name]]
    return M.build_model(ModelSpec(name=name, hparams=dict(hparams)), shape, outputs, seed=seed)


def batch(kind: str, n: int = 4, seed: int = 1) -> torch.Tensor:
    return M.dummy_input(SHAPES[kind], n, seed=seed)


@pytest.fixture
def clean_registry() -> Iterator[dict[str, M.ModelInfo]]:
    snap = registry_snapshot()
    yield snap
    restore_registry(snap)


def raises_code(code: str):  # noqa: ANN201 - pytest context manager
    return pytest.raises(ModelError, match=re.escape(f"[{code}]"))


# ---------------------------------------------------------------------------------- REQ-M01
@pytest.mark.req("REQ-M01")
def test_registry_lists_every_family_sorted_with_complete_metadata() -> None:
    infos = M.list_models()
    names = [i.name for i in infos]
    assert names == sorted(names) and set(FAMILIES) <= set(names)
    assert M.model_names() == tuple(names)
    for info in infos:
        assert info.description and info.recommended_use, info.name
        assert set(info.tasks) <= set(M.TASKS) and info.tasks
        assert set(info.input_kinds) <= set(M.INPUT_KINDS) and info.input_kinds
        assert list(info.presets) == ["tiny", "small", "base"] and info.default_preset == "small"
        for p in info.schema:
            assert p.help and p.type in ("int", "float", "bool", "choice", "int_list")
            assert p.validate(p.default) == p.default
        # schema defaults are the default preset, so "no preset" and the default preset agree
        assert M.resolve_hparams(ModelSpec(info.name)) == M.resolve_hparams(ModelSpec(info.name, preset="small"))
        json.loads(json.dumps(info.to_dict()))  # plain JSON for the UI form and the CLI flags
    assert {k: M.get_model_info(n).input_kinds for k, n in [("v", "mlp"), ("v2", "linear")]} == {
        "v": ("vector", "image", "sequence"),
        "v2": ("vector", "image", "sequence"),
    }


@pytest.mark.req("REQ-M01")
def test_param_types_validate_parse_and_round_trip_as_json() -> None:
    p_int = M.Param("n", "int", 3, min=1, max=5, help="h")
    p_float = M.Param("f", "float", 0.5, min=0.0, max=1.0, help="h")
    p_bool = M.Param("b", "bool", True, help="h")
    p_choice = M.Param("c", "choice", "a", choices=("a", "b"), help="h")
    p_list = M.Param("l", "int_list", [2, 3], min=1, max=9, min_items=1, max_items=3, help="h")
    assert p_float.validate(1) == 1.0 and isinstance(p_float.validate(1), float)
    assert p_list.validate((4, 5)) == [4, 5]
    assert p_list.parse_text("4, 5,6") == [4, 5, 6] and p_bool.parse_text("false") is False
    assert p_int.parse_text("4") == 4 and p_choice.parse_text("b") == "b"
    for param, bad in [
        (p_int, 6),
        (p_int, 2.0),
        (p_int, True),
        (p_float, math.nan),
        (p_bool, 1),
        (p_choice, "z"),
        (p_list, []),
        (p_list, [1, 2, 3, 4]),
        (p_list, [0]),
    ]:
        with raises_code("model.bad_hparam"):
            param.validate(bad)
    with raises_code("model.bad_hparam") as err:
        p_int.parse_text("many")
    assert "from 1 to 5" in str(err.value)
    for p in (p_int, p_float, p_bool, p_choice, p_list):
        assert M.Param.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with raises_code("model.bad_schema"):
        M.Param("x", "int", 10, min=0, max=5)
    with raises_code("model.bad_schema"):
        M.Param("x", "text", "a")
    assert M.HParam is M.Param


@pytest.mark.req("REQ-M01")
def test_register_model_checks_everything_and_refuses_duplicates(clean_registry: dict) -> None:
    def builder(input_shape: tuple[int, ...], num_outputs: int, **_: object) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs))

    bad = [
        dict(name="Bad Name", input_kinds=("vector",)),
        dict(name="x1", input_kinds=("audio",)),
        dict(name="x2", input_kinds=("vector",), tasks=("ranking",)),
        dict(
            name="x3", input_kinds=("vector",), schema=(M.Param("k", "int", 1, help="h"),), presets={"tiny": {"q": 1}}
        ),
        dict(name="x4", input_kinds=("vector",), presets={"tiny": {}}, default_preset="base"),
    ]
    for kwargs in bad:
        with raises_code("model.bad_registration"):
            M.register_model(description="d", **kwargs)(builder)  # type: ignore[arg-type]
    with raises_code("registry.duplicate"):
        M.register_model("mlp", description="d", input_kinds=("vector",))(builder)
    assert registry_snapshot() == clean_registry
    M.register_model("mine", description="d", input_kinds=("vector",))(builder)
    assert "mine" in M.model_names()
    M.unregister_model("mine")
    with raises_code("model.unknown"):
        M.unregister_model("mine")


# ---------------------------------------------------------------------------------- REQ-M02
@pytest.mark.req("REQ-M02")
def test_build_model_errors_name_the_valid_choices() -> None:
    with raises_code("model.unknown") as err:
        M.build_model(ModelSpec("mlpp"), (4,), 2)
    assert all(name in err.value.message for name in FAMILIES)
    with raises_code("model.bad_hparam") as err:
        M.build_model(ModelSpec("mlp", hparams={"hiden": [8]}), (4,), 2)
    assert "'hiden'" in err.value.message and "hidden" in err.value.message and "dropout" in err.value.message
    assert err.value.field == "model.hparams.hiden"
    with raises_code("model.bad_hparam") as err:
        M.build_model(ModelSpec("mlp", hparams={"dropout": 1.5}), (4,), 2)
    assert "from 0 to 0.9" in err.value.message and err.value.field == "model.hparams.dropout"
    with raises_code("model.bad_hparam") as err:
        M.build_model(ModelSpec("mlp", hparams={"activation": "swish"}), (4,), 2)
    assert "relu, gelu, silu, tanh" in err.value.message
    with raises_code("model.bad_hparam"):
        M.build_model(ModelSpec("mlp", hparams={"hidden": "64,32"}), (4,), 2)
    with raises_code("model.unknown_preset") as err:
        M.build_model(ModelSpec("mlp", preset="huge"), (4,), 2)
    assert "tiny, small, base" in err.value.message
    with raises_code("model.bad_input"):
        M.build_model(ModelSpec("mlp"), (4, 0), 2)
    with raises_code("model.bad_outputs"):
        M.build_model(ModelSpec("mlp"), (4,), 0)
    with raises_code("model.incompatible") as err:
        M.build_model(ModelSpec("resnet"), (4,), 2)
    assert "image" in err.value.message and "vector" in err.value.message
    # errors survive the JSON trip of the handler boundary
    assert json.loads(json.dumps(err.value.to_dict()))["code"] == "model.incompatible"


@pytest.mark.req("REQ-M02")
def test_nothing_is_built_before_validation_and_presets_merge_under_explicit_values(clean_registry: dict) -> None:
    calls = []

    @M.register_model(
        "spy",
        description="d",
        input_kinds=("vector",),
        schema=(M.Param("width", "int", 4, min=1, max=64, help="h"), M.Param("deep", "bool", False, help="h")),
        presets={"tiny": {"width": 2}, "small": {"width": 4}, "base": {"width": 32, "deep": True}},
    )
    def spy(input_shape: tuple[int, ...], num_outputs: int, *, width: int, deep: bool) -> nn.Module:
        calls.append((width, deep))
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.Linear(width, num_outputs))

    with raises_code("model.bad_hparam"):
        M.build_model(ModelSpec("spy", preset="base", hparams={"width": 65}), (3,), 2)
    assert calls == []
    M.build_model(ModelSpec("spy", preset="base", hparams={"width": 8}), (3,), 2)
    assert calls == [(8, True)]
    assert M.resolve_hparams(ModelSpec("mlp", preset="base", hparams={"dropout": 0.3})) == {
        "hidden": [512, 256, 128],
        "activation": "relu",
        "dropout": 0.3,
        "norm": "none",
    }


# ---------------------------------------------------------------------------------- REQ-M03
@pytest.mark.req("REQ-M03")
def test_linear_is_logistic_or_linear_regression_on_the_flattened_input() -> None:
    model = M.build_model(ModelSpec("linear"), (2, 3), 4, seed=0)
    assert M.count_parameters(model) == ((6 + 1) * 4, (6 + 1) * 4)
    x = torch.randn(5, 2, 3)
    w, b = model.head.weight, model.head.bias
    assert torch.allclose(model(x), x.flatten(1) @ w.T + b)
    no_bias = M.build_model(ModelSpec("linear", hparams={"bias": False}), (6,), 4)
    assert M.count_parameters(no_bias)[0] == 24


@pytest.mark.req("REQ-M03")
def test_linear_fits_noiseless_linear_data_to_the_least_squares_solution() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 5, generator=gen)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5], [3.0], [-1.0]]) + 0.25
    model = M.build_model(ModelSpec("linear"), (5,), 1, seed=0)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=60, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    design = torch.cat([x, torch.ones(256, 1)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution.squeeze(1)
    fitted = torch.cat([model.head.weight.detach().squeeze(0), model.head.bias.detach()])
    assert torch.allclose(fitted, solution, atol=1e-3)


# ---------------------------------------------------------------------------------- REQ-M04
@pytest.mark.req("REQ-M04")
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_mlp_layer_sequence_matches_its_hyperparameters(norm: str, dropout: float) -> None:
    model = M.build_model(ModelSpec("mlp", hparams={"hidden": [16, 8], "norm": norm, "dropout": dropout}), (5,), 3)
    expected = {"none": [], "batch": [nn.BatchNorm1d], "layer": [nn.LayerNorm]}[norm]
    for name, width, cin in [("hidden1", 16, 5), ("hidden2", 8, 16)]:
        block = getattr(model, name)
        kinds = [type(m) for m in block]
        assert kinds == [nn.Linear, *expected, nn.ReLU] + ([nn.Dropout] if dropout else [])
        assert (block[0].in_features, block[0].out_features) == (cin, width)
        if dropout:
            assert block[-1].p == dropout
    assert (model.head.in_features, model.head.out_features) == (8, 3)
    assert [n for n, _ in model.named_children()] == ["flatten", "hidden1", "hidden2", "head"]


@pytest.mark.req("REQ-M04")
def test_every_mlp_activation_builds_its_torch_class() -> None:
    classes = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
    assert set(M.get_model_info("mlp").param("activation").choices) == set(classes)
    for name, cls in classes.items():
        model = M.build_model(ModelSpec("mlp", hparams={"activation": name, "hidden": [4]}), (3,), 2)
        assert isinstance(model.hidden1[1], cls)
    empty = M.build_model(ModelSpec("mlp", hparams={"hidden": []}), (3,), 2)
    assert [n for n, _ in empty.named_children()] == ["flatten", "head"]


# ---------------------------------------------------------------------------------- REQ-M05
@pytest.mark.req("REQ-M05")
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8), (1, 28, 28), (4, 64, 48)])
def test_lenet_takes_any_image_of_at_least_8x8_and_any_channel_count(shape: tuple[int, ...]) -> None:
    model = M.build_model(ModelSpec("lenet"), shape, 6, seed=0).eval()
    out = model(M.dummy_input(shape, 2))
    assert out.shape == (2, 6) and torch.isfinite(out).all()
    assert model.conv1[0].in_channels == shape[0] and model.conv1[0].kernel_size == (5, 5)
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d)


@pytest.mark.req("REQ-M05")
def test_lenet_refuses_images_below_8x8_naming_the_minimum() -> None:
    with raises_code("model.incompatible") as err:
        M.build_model(ModelSpec("lenet"), (1, 7, 7), 3)
    assert "8x8" in err.value.message


# ---------------------------------------------------------------------------------- REQ-M06
@pytest.mark.req("REQ-M06")
def test_resnet_depth_width_and_projection_shortcuts() -> None:
    model = M.build_model(ModelSpec("resnet", hparams={"blocks": [2, 1, 3], "width": 8}), (3, 16, 16), 4)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 6
    for block in blocks:
        changes = block.conv1.stride != (1, 1) or block.conv1.in_channels != block.conv1.out_channels
        assert isinstance(block.shortcut, nn.Sequential) == changes
    assert [
        model.stage1[0].conv1.out_channels,
        model.stage2[0].conv1.out_channels,
        model.stage3[0].conv1.out_channels,
    ] == [8, 16, 32]
    assert model.stage2[0].conv1.stride == (2, 2) and model.stage1[0].conv1.stride == (1, 1)


@pytest.mark.req("REQ-M06")
@pytest.mark.parametrize("side", [8, 32])
def test_resnet_forward_backward_on_8x8_and_32x32(side: int) -> None:
    M.check_model("resnet", "image", (3, side, side), 5, preset="tiny")


# ---------------------------------------------------------------------------------- REQ-M07
@pytest.mark.req("REQ-M07")
def test_mobilenet_is_depthwise_separable_small_and_the_default_image_student() -> None:
    model = build("mobilenet")
    blocks = [m for m in model.modules() if isinstance(m, DepthwiseSeparable)]
    assert blocks and all(b.depthwise.groups == b.depthwise.in_channels for b in blocks)
    assert all(b.pointwise.kernel_size == (1, 1) for b in blocks)
    assert isinstance(blocks[0].act1, nn.ReLU6)
    assert M.default_student("image") == "mobilenet"
    assert M.default_model("image", "teacher").name == "resnet"
    shape = (3, 32, 32)
    tiny = M.count_parameters(M.build_model(ModelSpec("mobilenet", preset="tiny"), shape, 10))[0]
    resnet_small = M.count_parameters(M.build_model(ModelSpec("resnet", preset="small"), shape, 10))[0]
    assert tiny < resnet_small / 10
    half = M.build_model(ModelSpec("mobilenet", hparams={"width_mult": 0.5}), shape, 10)
    assert M.count_parameters(half)[0] < M.count_parameters(build("mobilenet", outputs=10))[0]
    assert half.stage3[0].pointwise.out_channels == 32


# ---------------------------------------------------------------------------------- REQ-M08
@pytest.mark.req("REQ-M08")
@pytest.mark.parametrize("name", ["cnn1d", "gru", "lstm"])
def test_sequence_models_accept_several_lengths(name: str) -> None:
    for length in (1, 5, 33):
        model = M.build_model(ModelSpec(name), (length, 2), 3, seed=0).eval()
        out = model(M.dummy_input((length, 2), 2))
        assert out.shape == (2, 3) and torch.isfinite(out).all()


@pytest.mark.req("REQ-M08")
def test_recurrent_cells_and_bidirectional_width() -> None:
    assert isinstance(build("gru").rnn.rnn, nn.GRU) and isinstance(build("lstm").rnn.rnn, nn.LSTM)
    for name in ("gru", "lstm"):
        one = build(name, hidden_size=12)
        two = build(name, hidden_size=12, bidirectional=True, num_layers=2, pooling="mean")
        assert one.head.in_features == 12 and two.head.in_features == 24
        assert two.rnn.rnn.num_layers == 2 and two.rnn.rnn.bidirectional
    conv = build("cnn1d", channels=[4, 6, 8], kernel_size=3)
    assert [conv.get_submodule(f"conv{i}")[0].out_channels for i in (1, 2, 3)] == [4, 6, 8]
    assert conv.conv1[0].in_channels == SHAPES["sequence"][1]


# ---------------------------------------------------------------------------------- REQ-M09
@pytest.mark.req("REQ-M09")
@pytest.mark.parametrize("depth,d_model,heads", [(1, 16, 2), (3, 24, 3)])
def test_transformer_depth_width_heads(depth: int, d_model: int, heads: int) -> None:
    model = build("transformer", depth=depth, d_model=d_model, heads=heads).eval()
    assert len([n for n, _ in model.named_children() if n.startswith("block")]) == depth
    assert model.block1.attn.heads == heads and model.embed.out_features == d_model
    assert model(batch("sequence")).shape == (4, 3)


@pytest.mark.req("REQ-M09")
def test_transformer_rejects_heads_that_do_not_divide_d_model() -> None:
    with raises_code("model.bad_hparam") as err:
        build("transformer", d_model=30, heads=4)
    assert "[1, 2, 3, 5, 6, 10, 15]" in err.value.message


@pytest.mark.req("REQ-M09")
@pytest.mark.parametrize("positional,pooling", [("sinusoidal", "mean"), ("learned", "cls"), ("sinusoidal", "max")])
def test_transformer_positional_encoding_is_in_effect(positional: str, pooling: str) -> None:
    model = build("transformer", positional=positional, pooling=pooling, dropout=0.0).eval()
    if positional == "learned":
        nn.init.normal_(model.position.table)
    x = batch("sequence", 2)
    flipped = x.flip(1)
    assert model(x).shape == (2, 3)
    assert not torch.allclose(model(x), model(flipped), atol=1e-5)
    blind = build("transformer", positional="none", pooling="mean", dropout=0.0).eval()
    assert torch.allclose(blind(x), blind(flipped), atol=1e-5)  # without it, order is invisible


# ---------------------------------------------------------------------------------- REQ-M10
@pytest.mark.req("REQ-M10")
@pytest.mark.parametrize("name", FAMILIES)
def test_presets_list_parameter_counts_for_the_data_at_hand(name: str) -> None:
    kind = FAMILY_KIND[name]
    shapes = {
        "vector": [DIGITS_VECTOR, (3 * 32 * 32,)],
        "image": [DIGITS_IMAGE, (3, 32, 32)],
        "sequence": [(16, 1), (32, 3)],
    }[kind]
    for shape in shapes:
        presets = M.list_presets(name, shape, 10)
        assert [p.name for p in presets] == ["tiny", "small", "base"]
        assert [p.default for p in presets] == [False, True, False]
        counts = [p.params for p in presets]
        for p in presets:
            built = M.build_model(ModelSpec(name, preset=p.name), shape, 10)
            assert p.params == M.count_parameters(built)[0]
            assert p.hparams == M.resolve_hparams(ModelSpec(name, preset=p.name))
        if name == "linear":  # nothing to scale: one layer, whatever the preset
            assert len(set(counts)) == 1
        else:
            assert counts[0] < counts[1] < counts[2]
        assert json.loads(json.dumps(M.preset_table(name, shape, 10)))[1]["params"] == counts[1]


# ---------------------------------------------------------------------------------- REQ-M11
@pytest.mark.req("REQ-M11")
def test_parameter_counts_size_and_macs_by_hand() -> None:
    lin = nn.Linear(7, 3)
    assert M.count_parameters(lin) == (24, 24) and M.size_bytes(lin) == 24 * 4
    assert M.estimate_macs(lin, (7,)) == 21
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert M.count_parameters(conv)[0] == 8 * 3 * 9 + 8
    assert M.estimate_macs(conv, (3, 10, 10)) == 8 * 10 * 10 * 3 * 9
    mlp = M.build_model(ModelSpec("mlp", hparams={"hidden": [16, 8], "norm": "batch"}), (5,), 3)
    assert M.count_parameters(mlp)[0] == (5 * 16 + 16 + 32) + (16 * 8 + 8 + 16) + (8 * 3 + 3)
    assert M.estimate_macs(mlp, (5,)) == 5 * 16 + 16 * 8 + 8 * 3
    buffers = (16 + 16 + 1) + (8 + 8 + 1)  # running mean/var (float32) and num_batches_tracked (int64)
    assert M.size_bytes(mlp) == 4 * M.count_parameters(mlp)[0] + 4 * (buffers - 2) + 8 * 2
    assert M.model_size_bytes is M.size_bytes
    shared = nn.Sequential(lin, lin)
    assert M.count_parameters(shared) == (24, 24)
    M.freeze(mlp, ["hidden1"])
    assert M.count_parameters(mlp)[1] == M.count_parameters(mlp)[0] - (5 * 16 + 16 + 32)


@pytest.mark.req("REQ-M11")
def test_macs_of_recurrent_and_attention_layers() -> None:
    gru = build("gru", hidden_size=6)
    length, channels = SHAPES["sequence"]
    assert M.estimate_macs(gru, SHAPES["sequence"]) == length * 3 * 6 * (channels + 6) + 6 * 3
    tr = build("transformer", depth=1, d_model=16, heads=2, ff_mult=2)
    linear = length * channels * 16 + length * (16 * 48 + 16 * 16 + 16 * 32 + 32 * 16) + 16 * 3
    assert M.estimate_macs(tr, SHAPES["sequence"]) == linear + 2 * length * length * 16
    mha = nn.MultiheadAttention(8, 2, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    assert M.estimate_macs(Wrap(), (5, 8)) == 4 * 5 * 8 * 8 + 2 * 5 * 5 * 8


@pytest.mark.req("REQ-M11", "REQ-M12", "REQ-M16")
def test_summarize_model_fills_the_core_contract_and_round_trips_as_json() -> None:
    summary = M.summarize_model(ModelSpec("lenet", preset="tiny"), DIGITS_IMAGE, 10)
    model = M.build_model(ModelSpec("lenet", preset="tiny"), DIGITS_IMAGE, 10)
    assert summary.params_total == summary.params_trainable == M.count_parameters(model)[0]
    assert summary.size_bytes == M.size_bytes(model) and summary.macs == M.estimate_macs(model, DIGITS_IMAGE)
    assert summary.features == M.feature_layers(model, DIGITS_IMAGE)
    assert [p["name"] for p in summary.schema] == [p.name for p in M.get_model_info("lenet").schema]
    assert ModelSummary.from_json(summary.to_json()) == summary


# ---------------------------------------------------------------------------------- REQ-M12
@pytest.mark.req("REQ-M12")
def test_layer_summary_of_a_known_mlp() -> None:
    model = M.build_model(ModelSpec("mlp", hparams={"hidden": [6], "dropout": 0.5}), (2, 2), 3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = M.layer_summary(model, (2, 2))
    assert [(r["name"], r["type"], r["output_shape"], r["params"]) for r in rows] == [
        ("flatten", "Flatten", [4], 0),
        ("hidden1", "Sequential", [6], 30),
        ("hidden1.0", "Linear", [6], 30),
        ("hidden1.1", "ReLU", [6], 0),
        ("hidden1.2", "Dropout", [6], 0),
        ("head", "Linear", [3], 21),
    ]
    leaves = {n for n, m in model.named_modules() if not list(m.children())}
    assert sum(r["params"] for r in rows if r["name"] in leaves) == M.count_parameters(model)[0]
    assert sum(r["params"] for r in rows if r["depth"] == 1) == M.count_parameters(model)[0]
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.req("REQ-M12")
def test_layer_summary_leaves_batch_norm_statistics_alone() -> None:
    model = build("resnet", blocks=[1], width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = M.layer_summary(model, SHAPES["image"])
    assert rows[-1]["name"] == "head" and rows[-1]["output_shape"] == [3]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------- REQ-M13
@pytest.mark.req("REQ-M13")
@pytest.mark.parametrize("scheme", ["default", "kaiming", "xavier"])
def test_initialisation_is_deterministic_under_a_seed(scheme: str) -> None:
    def weights(seed: int | None = None, manual: int | None = None) -> list[torch.Tensor]:
        if manual is not None:
            torch.manual_seed(manual)
        model = M.build_model(ModelSpec("resnet", preset="tiny", init=scheme), (3, 8, 8), 4, seed=seed)
        return [t.clone() for t in model.state_dict().values()]

    same = weights(seed=3), weights(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(*same))
    assert not all(torch.equal(a, b) for a, b in zip(weights(seed=3), weights(seed=4)))
    assert all(torch.equal(a, b) for a, b in zip(weights(manual=5), weights(manual=5)))
    state = torch.get_rng_state()
    weights(seed=3)
    assert torch.equal(state, torch.get_rng_state())  # building with a seed does not advance the global RNG


@pytest.mark.req("REQ-M13")
def test_kaiming_and_xavier_have_their_standard_deviations() -> None:
    fan_in, fan_out = 1024, 512
    for scheme, expected in [("kaiming", math.sqrt(2 / fan_in)), ("xavier", math.sqrt(2 / (fan_in + fan_out)))]:
        model = M.build_model(ModelSpec("mlp", hparams={"hidden": [fan_out]}, init=scheme), (fan_in,), 2, seed=0)
        w = model.hidden1[0].weight
        assert abs(w.std().item() - expected) / expected < 0.1, scheme
        assert torch.count_nonzero(model.hidden1[0].bias) == 0
    rnn = M.build_model(ModelSpec("gru", init="xavier"), (4, 3), 2, seed=0)
    assert torch.count_nonzero(rnn.rnn.rnn.bias_ih_l0) == 0
    norm = M.build_model(ModelSpec("mlp", hparams={"norm": "layer"}, init="kaiming"), (4,), 2)
    assert torch.equal(norm.hidden1[1].weight, torch.ones(128))
    with raises_code("model.bad_hparam") as err:
        M.build_model(ModelSpec("mlp", init="orthogonal"), (4,), 2)
    assert "default, kaiming, xavier" in err.value.message


# ---------------------------------------------------------------------------------- REQ-M14
@pytest.mark.req("REQ-M14")
@pytest.mark.parametrize("name", FAMILIES)
def test_resolved_spec_is_plain_json_and_rebuilds_the_same_architecture(name: str) -> None:
    shape = SHAPES[FAMILY_KIND[name]]
    spec = ModelSpec(name=name, preset="tiny", init="xavier")
    original = M.build_model(spec, shape, 5, seed=7)
    record = json.loads(json.dumps(M.resolve_spec(spec, shape, 5)))
    assert record["input_shape"] == list(shape) and record["num_outputs"] == 5
    assert set(record["model"]["hparams"]) == {p.name for p in M.get_model_info(name).schema}
    rebuilt = M.rebuild(json.dumps(record), seed=7)
    assert str(rebuilt) == str(original)
    a, b = original.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    # the ModelSpec contract itself is JSON too
    again = M.build_model(ModelSpec.from_json(spec.to_json()), shape, 5, seed=7)
    assert str(again) == str(original)


# ---------------------------------------------------------------------------------- REQ-M15
@pytest.mark.req("REQ-M15")
@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_forward_backward_on_every_declared_input_kind(name: str, kind: str) -> None:
    model = M.build_model(ModelSpec(name), SHAPES[kind], 3, seed=0).train()
    out = model(batch(kind))
    assert out.shape == (4, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    M.check_model(name, kind)  # the check user models also go through


# ---------------------------------------------------------------------------------- REQ-M16
@pytest.mark.req("REQ-M16")
@pytest.mark.parametrize("name", FAMILIES)
def test_feature_layers_are_captured_by_hooks_without_changing_outputs(name: str) -> None:
    kind = FAMILY_KIND[name]
    model = build(name).eval()
    listing = M.feature_layers(model, SHAPES[kind])
    assert list(listing) == list(M.feature_names(model)) and listing
    x = batch(kind, 2)
    plain = model(x)
    with M.capture_features(model, list(listing)) as feats:
        hooked = model(x)
    assert torch.equal(plain, hooked)
    assert {n: tuple(t.shape[1:]) for n, t in feats.items()} == listing
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.req("REQ-M16")
def test_captured_features_keep_their_gradient_and_unknown_names_list_the_available_ones() -> None:
    model = build("mobilenet").train()
    with M.capture_features(model, ["stage2", "stage3.0.pointwise"]) as feats:
        model(batch("image"))
    assert feats["stage2"].requires_grad and feats["stage3.0.pointwise"].shape[1] == 64
    feats["stage2"].mean().backward()
    assert model.stem[0].weight.grad is not None
    with raises_code("model.unknown_layer") as err:
        with M.capture_features(model, ["stage9"]):
            pass
    assert "stem, stage1, stage2, stage3, flatten" in err.value.message
    assert not any(m._forward_hooks for m in model.modules())
    backbone = model[:-1]  # slicing keeps a usable feature extractor
    assert M.feature_layers(backbone, SHAPES["image"])["flatten"] == (64,)


# ---------------------------------------------------------------------------------- REQ-M17
@pytest.mark.req("REQ-M17")
@pytest.mark.parametrize("name", ["mlp", "resnet", "transformer"])
def test_frozen_parameters_get_no_gradient_and_do_not_move(name: str) -> None:
    kind = FAMILY_KIND[name]
    model = build(name).train()
    frozen = M.freeze(model, "all_but_head")
    assert frozen and all(not n.startswith("head.") for n in frozen)
    assert M.frozen_parameters(model) == frozen
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.zero_grad()
        model(batch(kind)).square().mean().backward()
        opt.step()
    params = dict(model.named_parameters())
    for n in frozen:
        assert params[n].grad is None and torch.equal(params[n], before[n]), n
    assert not torch.equal(params["head.weight"], before["head.weight"])


@pytest.mark.req("REQ-M17")
def test_freeze_by_name_and_unknown_layers() -> None:
    model = build("mlp")
    assert M.freeze(model, ["hidden1"]) == ["hidden1.0.weight", "hidden1.0.bias"]
    assert M.freeze(model, all_but_head=True) == [n for n in dict(model.named_parameters()) if "head" not in n]
    assert M.unfreeze(model) and not M.frozen_parameters(model)
    M.freeze(model, "head.bias")
    assert M.frozen_parameters(model) == ["head.bias"]
    with raises_code("model.unknown_layer") as err:
        M.freeze(build("mlp"), ["hidden9"])
    assert "flatten, hidden1, hidden2, head" in err.value.message
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert M.freeze(plain, "all_but_head") == ["0.weight", "0.bias"]  # head = last layer with parameters


# ---------------------------------------------------------------------------------- REQ-M18
@pytest.mark.req("REQ-M18")
@pytest.mark.parametrize("name", FAMILIES)
def test_dropout_and_batch_norm_follow_the_mode(name: str) -> None:
    info = M.get_model_info(name)
    kind = info.input_kinds[0]
    names = {p.name for p in info.schema}
    hp: dict[str, object] = {"dropout": 0.5} if "dropout" in names else {}
    if name == "mlp":
        hp["norm"] = "batch"
    model = M.build_model(ModelSpec(name, hparams=hp), SHAPES[kind], 3, seed=0)
    x = batch(kind, 8)
    model.eval()
    assert torch.equal(model(x), model(x))
    bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bn:
        stats = bn[0].running_mean.clone()
        model(x)
        assert torch.equal(stats, bn[0].running_mean)
        model.train()
        model(x)
        assert not torch.equal(stats, bn[0].running_mean)
    if hp.get("dropout"):
        model.train()
        torch.manual_seed(0)
        a = model(x)
        b = model(x)
        assert not torch.equal(a, b)
    if name == "linear":
        assert not bn and not hp  # nothing mode-dependent


# ---------------------------------------------------------------------------------- REQ-M19
UNUSUAL = {"vector": (7,), "image": (3, 20, 13), "sequence": (37, 2)}


@pytest.mark.req("REQ-M19")
@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_shapes_come_from_the_data(name: str, kind: str) -> None:
    shape = UNUSUAL[kind]
    model = M.build_model(ModelSpec(name, preset="tiny"), shape, 5, seed=0).eval()
    assert model(M.dummy_input(shape, 3)).shape == (3, 5)


@pytest.mark.req("REQ-M19")
def test_builders_hard_code_no_dataset_sizes() -> None:
    """No class count or image side in the code that builds layers (presets may name widths)."""
    folder = Path(M.__file__).parent / "families"
    suspicious = {10, 28, 32, 64, 224, 784}
    builders = 0
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and (node.name.startswith("build") or node.name == "_build"):
                builders += 1
                for stmt in node.body:
                    found = {c.value for c in ast.walk(stmt) if isinstance(c, ast.Constant)} & suspicious
                    assert not found, f"{path.name}:{node.name} hard-codes {found}"
                assert "input_shape" in ast.unparse(node) and "num_outputs" in ast.unparse(node)
    assert builders >= len(FAMILIES)


# ---------------------------------------------------------------------------------- REQ-M20
@pytest.mark.req("REQ-M20")
@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_forward_in_float32_and_bfloat16_on_cpu(name: str, kind: str) -> None:
    model = M.build_model(ModelSpec(name), SHAPES[kind], 3, seed=0).eval()
    ref = model(batch(kind))
    assert ref.dtype == torch.float32 and torch.isfinite(ref).all()
    low = model.to(torch.bfloat16)(batch(kind).to(torch.bfloat16))
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert torch.allclose(low.float(), ref, atol=0.25, rtol=0.1)


@pytest.mark.req("REQ-M20")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", FAMILIES)
def test_forward_on_cuda_in_float32_and_bfloat16(name: str) -> None:  # pragma: no cover - needs a GPU
    kind = FAMILY_KIND[name]
    model = build(name).eval().cuda()
    x = batch(kind).cuda()
    assert torch.isfinite(model(x)).all()
    low = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()


# ---------------------------------------------------------------------------------- REQ-M21
@pytest.mark.req("REQ-M21")
def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("mlp").eval()
    x = batch("vector")

    def broken(*args: object, **kwargs: object) -> nn.Module:
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(M.CompileFallbackWarning, match="no compiler here"):
        got, why = M.maybe_compile(model)
    assert got is model and why and "eager" in why
    assert torch.equal(got(x), model(x))


@pytest.mark.req("REQ-M21")
def test_a_compile_that_fails_on_first_call_also_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("cnn1d").train()

    def lazy_failure(module: nn.Module, **kwargs: object):  # noqa: ANN202 - mimics torch.compile
        def run(*args: object) -> torch.Tensor:
            raise RuntimeError("inductor backend failed")

        return run

    monkeypatch.setattr(torch, "compile", lazy_failure)
    with pytest.warns(M.CompileFallbackWarning, match="inductor backend failed"):
        got, why = M.maybe_compile(model, SHAPES["sequence"])
    assert got is model and why and model.training
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.maybe_compile(model, enabled=False) == (model, None)
    monkeypatch.delattr(torch, "compile")
    with pytest.warns(M.CompileFallbackWarning):
        assert M.maybe_compile(model)[0] is model


@pytest.mark.req("REQ-M21")
def test_compile_success_returns_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("mlp").eval()
    seen = []

    def fake_compile(module: nn.Module, **kwargs: object) -> nn.Module:
        seen.append(kwargs)
        return module  # a real torch.compile takes too long for a unit test on two cores

    monkeypatch.setattr(torch, "compile", fake_compile)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, why = M.maybe_compile(model, batch("vector"), mode="reduce-overhead")
    assert got is model and why is None and seen == [{"mode": "reduce-overhead"}]


# ---------------------------------------------------------------------------------- REQ-M22
# The dynamo exporter unrolls recurrent layers step by step, so its time grows with the sequence length:
# short sequences keep this file fast (the legacy exporter, tested below, handles long ones quickly).
EXPORT_SHAPES = {"vector": (10,), "image": (3, 12, 12), "sequence": (4, 3)}


def _default_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    shape = EXPORT_SHAPES[FAMILY_KIND[name]]
    return M.build_model(ModelSpec(name, preset=M.get_model_info(name).default_preset), shape, 4, seed=0).eval(), shape


@pytest.mark.req("REQ-M22")
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_exports_to_torchscript(name: str, tmp_path: Path) -> None:
    model, shape = _default_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in recent PyTorch, and says so
        traced = torch.jit.trace(model, M.dummy_input(shape, 2), check_trace=False)
        torch.jit.save(traced, str(tmp_path / "m.pt"))
        loaded = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        for n in (1, 7):
            x = M.dummy_input(shape, n, seed=n)
            assert (loaded(x) - model(x)).abs().max().item() <= 1e-4


def _onnx_matches(model: nn.Module, shape: tuple[int, ...], path: Path, dynamo: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    kwargs: dict[str, object] = {"input_names": ["x"], "output_names": ["y"], "dynamo": dynamo}
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    else:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (M.dummy_input(shape, 2),), str(path), **kwargs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for n in (1, 7):
            x = M.dummy_input(shape, n, seed=n)
            (y,) = session.run(None, {"x": x.numpy()})
            assert y.shape == (n, 4)
            assert abs(y - model(x).numpy()).max() <= 1e-4


@pytest.mark.slow
@pytest.mark.req("REQ-M22")
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_exports_to_onnx_and_onnxruntime_agrees(name: str, tmp_path: Path) -> None:
    model, shape = _default_model(name)
    _onnx_matches(model, shape, tmp_path / f"{name}.onnx", dynamo=True)


@pytest.mark.req("REQ-M22")
@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_recurrent_models_on_long_sequences_export_with_the_legacy_exporter(name: str, tmp_path: Path) -> None:
    shape = (64, 3)
    spec = ModelSpec(name, hparams={"bidirectional": True, "num_layers": 2})
    model = M.build_model(spec, shape, 4, seed=0).eval()
    _onnx_matches(model, shape, tmp_path / f"{name}.onnx", dynamo=False)


# ---------------------------------------------------------------------------------- REQ-M23
GOOD_PLUGIN = """
from torch import nn
from studio.backend.pytorch.models import Param, register_model

@register_model("tiny_net", description="A user model.", recommended_use="Testing.",
                tasks=("classification",), input_kinds=("vector",),
                schema=(Param("width", "int", 8, min=1, max=64, help="Hidden width."),),
                presets={"tiny": {"width": 2}, "small": {"width": 8}, "base": {"width": 32}})
def build(input_shape, num_outputs, *, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, num_outputs))
"""


@pytest.mark.req("REQ-M23")
def test_a_user_file_registers_its_models(clean_registry: dict, tmp_path: Path) -> None:
    path = tmp_path / "my_models.py"
    path.write_text(GOOD_PLUGIN)
    assert M.load_user_models(path) == ("tiny_net",)
    info = M.get_model_info("tiny_net")
    assert info.source == str(path.resolve())
    model = M.build_model(ModelSpec("tiny_net", preset="base"), (5,), 2)
    assert M.count_parameters(model)[0] == 5 * 32 + 32 + 32 * 2 + 2
    assert "tiny_net" in M.describe_models() and str(path.resolve()) in M.describe_model("tiny_net")
    assert M.freeze(model, "all_but_head") == ["1.weight", "1.bias"]
    with raises_code("registry.duplicate"):
        M.load_user_models(path)
    assert M.load_user_models(path, reload=True) == ("tiny_net",)


BAD_PLUGINS = {
    "syntax": "def oops(:\n",
    "import_error": "import a_module_that_does_not_exist\n",
    "raises": "raise RuntimeError('boom at import')\n",
    "nothing": "X = 1\n",
    "bad_schema": GOOD_PLUGIN.replace('Param("width", "int", 8,', 'Param("width", "int", 99,'),
    "failing_forward": GOOD_PLUGIN.replace("nn.Linear(input_shape[0], width)", "nn.Linear(input_shape[0] + 1, width)"),
    "half_registered": GOOD_PLUGIN + "\nraise ValueError('after registering')\n",
    "duplicate": GOOD_PLUGIN.replace('"tiny_net"', '"mlp"'),
}


@pytest.mark.req("REQ-M23")
@pytest.mark.parametrize("kind", list(BAD_PLUGINS))
def test_a_bad_user_file_is_a_clear_error_and_leaves_the_registry_as_it_was(
    kind: str, clean_registry: dict, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.py"
    path.write_text(textwrap.dedent(BAD_PLUGINS[kind]))
    code = "registry.duplicate" if kind == "duplicate" else "model.plugin_failed"
    with raises_code(code) as err:
        M.load_user_models(path)
    assert str(path.resolve()) in err.value.message
    if kind not in ("nothing",):
        assert err.value.__cause__ is not None
    assert registry_snapshot() == clean_registry
    assert M.list_models() == tuple(clean_registry[n] for n in sorted(clean_registry))


@pytest.mark.req("REQ-M23")
def test_only_existing_python_files_are_loaded(tmp_path: Path) -> None:
    with raises_code("model.plugin_failed"):
        M.load_user_models(tmp_path / "missing.py")
    text = tmp_path / "models.txt"
    text.write_text(GOOD_PLUGIN)
    with raises_code("model.plugin_failed"):
        M.load_user_models(text)


# ---------------------------------------------------------------------------------- REQ-M24
@pytest.mark.req("REQ-M24")
def test_compatibility_of_models_with_data() -> None:
    iris = DataSummary(
        name="iris", task="classification", input_kind="vector", input_shape=(4,), num_samples=150, num_outputs=3
    )
    ok, reason = M.check_compatibility(ModelSpec("lenet"), iris)
    assert not ok and "image" in reason and "vector" in reason and "mlp" in reason
    digits = DataSummary(
        name="digits",
        task="classification",
        input_kind="image",
        input_shape=(1, 8, 8),
        num_samples=1797,
        num_outputs=10,
    )
    sine = DataSummary(
        name="sine", task="regression", input_kind="sequence", input_shape=(32, 1), num_samples=500, num_outputs=1
    )
    for data in (iris, digits, sine):
        assert M.check_compatibility(ModelSpec("mlp"), data).ok
    assert M.check_compatibility(ModelSpec("lenet"), digits) == (
        True,
        "Model 'lenet' fits image data for classification.",
    )
    small = M.check_compatibility(ModelSpec("lenet"), "image", "classification", input_shape=(1, 6, 6))
    assert not small.ok and "8x8" in small.reason
    assert M.check_compatibility({"name": "gru"}, "sequence", "regression").ok
    assert not M.check_compatibility(ModelSpec("gru"), "sequence", "ranking").ok
    assert "hiden" in M.check_compatibility(ModelSpec("mlp", hparams={"hiden": 1}), iris).reason
    assert "available models" in M.check_compatibility(ModelSpec("nope"), iris).reason
    with raises_code("model.incompatible"):
        M.require_compatible(ModelSpec("resnet"), iris)


# ---------------------------------------------------------------------------------- REQ-M25
@pytest.mark.req("REQ-M25")
@pytest.mark.parametrize("name", FAMILIES)
def test_each_model_is_described_with_its_default_preset_size(name: str) -> None:
    info = M.get_model_info(name)
    kind = info.input_kinds[0]
    shape = {"vector": DIGITS_VECTOR, "image": DIGITS_IMAGE, "sequence": (32, 1)}[kind]
    text = M.describe_model(name, shape, 10)
    params = M.count_parameters(M.build_model(ModelSpec(name, preset="small"), shape, 10))[0]
    assert info.description in text and info.recommended_use in text
    assert f"{params:,}" in text and "Default preset (small)" in text
    for p in info.schema:
        assert f"`{p.name}`" in text


@pytest.mark.req("REQ-M25")
def test_describe_models_covers_the_registry_deterministically() -> None:
    doc = M.describe_models()
    assert doc == M.describe_models()
    positions = [doc.index(f"### {name}\n") for name in M.model_names()]
    assert positions == sorted(positions)
    assert doc.startswith("## Models")
