"""Runtime: devices, seeding, determinism, threads (REQ-H21)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from studio.backend.core.errors import DeviceUnavailableError, RuntimeConfigError
from studio.backend.core.requests import RuntimeConfig
from studio.backend.pytorch import runtime


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)


@pytest.mark.req("REQ-H21")
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch) -> None:
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else
                                                   "mps" if runtime._mps_available() else "cpu")
    monkeypatch.setattr(runtime, "available_devices", lambda: ["cpu", "mps"])
    assert runtime.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(runtime, "available_devices", lambda: ["cpu", "cuda:0", "cuda:1", "mps"])
    assert runtime.resolve_device("auto") == torch.device("cuda:0")
    assert runtime.resolve_device("cuda") == torch.device("cuda:0")
    assert runtime.resolve_device("CUDA:1") == torch.device("cuda:1")


@pytest.mark.req("REQ-H21")
def test_an_unavailable_device_is_a_clear_error_listing_the_available_ones() -> None:
    with pytest.raises(DeviceUnavailableError) as info:
        runtime.resolve_device("cuda:7")
    err = info.value
    assert err.code == "runtime.device_unavailable" and err.field == "device" and "cpu" in err.message
    with pytest.raises(RuntimeConfigError):
        runtime.resolve_device("")


@pytest.mark.req("REQ-H21")
def test_one_seed_drives_python_numpy_and_torch() -> None:
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


@pytest.mark.req("REQ-H21")
@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True, None])
def test_a_bad_seed_is_a_clear_error_and_changes_nothing(seed) -> None:
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    with pytest.raises(RuntimeConfigError) as info:
        runtime.apply_runtime(RuntimeConfig(device="cpu", seed=seed, threads=1))  # type: ignore[arg-type]
    assert info.value.code == "runtime.bad_seed"
    assert torch.equal(torch.rand(1), expected)  # the generator was not reseeded


@pytest.mark.req("REQ-H21")
def test_apply_runtime_sets_threads_determinism_and_seed() -> None:
    device = runtime.apply_runtime(RuntimeConfig(device="cpu", seed=9, deterministic=True, threads=1))
    assert device == torch.device("cpu")
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    a = torch.rand(3)
    runtime.apply_runtime(RuntimeConfig(device="cpu", seed=9, deterministic=False, threads=2))
    assert torch.equal(torch.rand(3), a) and torch.get_num_threads() == 2
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.req("REQ-H21")
def test_bad_thread_count_or_device_changes_nothing() -> None:
    before = torch.get_num_threads()
    for config in (RuntimeConfig(threads=0), RuntimeConfig(device="tpu")):
        with pytest.raises(RuntimeConfigError):
            runtime.apply_runtime(config)
    assert torch.get_num_threads() == before


@pytest.mark.req("REQ-H21")
def test_devices_are_described_for_the_ui() -> None:
    infos = runtime.describe_devices()
    assert infos[0].id == "cpu" and infos[0].name
    assert infos[0].total_memory_bytes is None or infos[0].total_memory_bytes > 2**28
    assert [i.id for i in infos] == runtime.available_devices()
    assert set(infos[0].to_dict()) == {"id", "kind", "name", "total_memory_bytes", "bf16", "fp16"}
