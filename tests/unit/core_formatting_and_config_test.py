"""Shared handler utilities: JSON round trip, config merging, human formatting (REQ-H12)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.backend.core.config_merge import merge_config
from studio.backend.core.contract import round_trip
from studio.backend.core.errors import ValidationError
from studio.backend.core.formatting import format_bytes, format_count, format_duration
from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig, TrainRequest

finite = st.floats(allow_nan=False, allow_infinity=False)


@pytest.mark.req("REQ-H12")
@settings(max_examples=60, deadline=None)
@given(epochs=st.integers(1, 10_000), lr=finite, smoothing=finite, seed=st.integers(0, 2**32 - 1),
       name=st.text(max_size=20), weights=st.one_of(st.none(), st.tuples(finite, finite)))
def test_request_json_round_trip_is_exact(epochs, lr, smoothing, seed, name, weights) -> None:
    request = TrainRequest(
        data=DataSpec(name=name, seed=seed, options={"nested": {"a": [1, 2.5, None, "x"]}}),
        model=ModelSpec(name=name, hparams={"hidden": [64, 32], "dropout": smoothing}),
        config=TrainConfig(epochs=epochs, lr=lr, label_smoothing=smoothing, class_weights=weights),
    )
    assert round_trip(request) == request


@pytest.mark.req("REQ-H12")
def test_merge_config_replaces_only_the_given_keys_and_merges_nested_contracts() -> None:
    merged = merge_config(TrainRequest(), {"config": {"epochs": 3}, "data": {"name": "iris"}})
    assert merged.config.epochs == 3 and merged.config.lr == TrainConfig().lr
    assert merged.data.name == "iris" and merged.data.val_fraction == DataSpec().val_fraction
    assert merge_config(TrainConfig(), None) == TrainConfig()


@pytest.mark.req("REQ-H12")
def test_merge_config_rejects_unknown_keys_and_suggests_the_closest() -> None:
    with pytest.raises(ValidationError) as info:
        merge_config(TrainConfig(), {"learning_rate": 0.1, "epocs": 2})
    err = info.value
    assert err.code == "request.unknown_key"
    assert "epocs" in err.message and "learning_rate" in err.message
    assert "'epochs'" in (err.hint or "")
    with pytest.raises(ValidationError):
        merge_config(TrainRequest(), {"config": {"batchsize": 3}})


@pytest.mark.req("REQ-H12")
@pytest.mark.parametrize("n,text", [(0, "0"), (999, "999"), (1234, "1.2 K"), (3_400_000, "3.4 M"),
                                    (7_000_000_000, "7.0 B"), (-2500, "-2.5 K"), (0.5, "0.5")])
def test_format_count(n, text) -> None:
    assert format_count(n) == text


@pytest.mark.req("REQ-H12")
@pytest.mark.parametrize("n,text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"),
                                    (3 * 1024**3, "3.0 GiB"), (2 * 1024**5, "2048.0 TiB")])
def test_format_bytes(n, text) -> None:
    assert format_bytes(n) == text


@pytest.mark.req("REQ-H12")
@pytest.mark.parametrize("s,text", [(0.0000012, "1.2 µs"), (0.00031, "310 µs"), (0.0053, "5.3 ms"), (0.0123, "12 ms"), (5.25, "5.2 s"), (75, "1 min 15 s"),
                                    (3725, "1 h 2 min"), (math.nan, "unknown")])
def test_format_duration(s, text) -> None:
    assert format_duration(s) == text


@pytest.mark.req("REQ-H12")
def test_formatting_refuses_negative_sizes_and_durations() -> None:
    with pytest.raises(ValueError):
        format_bytes(-1)
    with pytest.raises(ValueError):
        format_duration(-1)
