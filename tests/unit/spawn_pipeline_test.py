"""The data pipeline under the ``spawn`` start method, as on macOS and Windows (no ``fork`` there).

A real image folder on disk is trained on in a process started by ``spawn``, whose DataLoader workers
are spawned too (each re-imports Studio and receives the dataset by pickling); the run must finish
and give exactly the numbers of the same run here, with the workers this platform starts by default.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_lib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def shapes_folder(root: Path, per_class: int = 6, size: int = 18) -> str:
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("left", "right", "centre")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            region = [(slice(None), slice(0, size // 2)), (slice(None), slice(size // 2, size)),
                      (slice(size // 4, 3 * size // 4), slice(size // 4, 3 * size // 4))][k]
            img[region] += 150
            Image.fromarray(img, "RGB").save(root / cls / f"{i}.png")
    return str(root)


def train_on_disk(folder: str) -> dict[str, Any]:
    import torch

    from studio.backend.core.requests import DataSpec, ModelSpec, RuntimeConfig, TrainConfig, TrainRequest
    from studio.backend.pytorch import handlers

    torch.set_num_threads(1)
    request = TrainRequest(data=DataSpec(source="images", path=folder, val_fraction=0.25, seed=3,
                                         options={"size": 16, "on_disk": True}),
                           model=ModelSpec(name="lenet"), config=TrainConfig(epochs=2, batch_size=4, lr=3e-3),
                           runtime=RuntimeConfig(seed=5))
    result = handlers.train(request)
    return {"status": result.status, "steps": result.steps, "history": [dict(h) for h in result.history],
            "start_method": multiprocessing.get_start_method()}


def _spawned(folder: str, out: Any) -> None:  # runs in the spawned process
    multiprocessing.set_start_method("spawn", force=True)  # and so do the DataLoader's workers
    try:
        out.put(train_on_disk(folder))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        out.put({"error": f"{type(exc).__name__}: {exc}"})


@pytest.mark.req("REQ-D07")
def test_training_on_an_image_folder_works_in_a_spawned_process_with_spawned_workers(tmp_path: Path,
                                                                                    one_torch_thread) -> None:
    folder = shapes_folder(tmp_path / "shapes")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=_spawned, args=(folder, out))
    process.start()
    try:
        spawned = out.get(timeout=240)
    except queue_lib.Empty:
        spawned = {"error": "no answer within 240 s"}
    finally:
        process.join(60)
        if process.is_alive():
            process.kill()
    assert "error" not in spawned, spawned["error"]
    assert spawned["start_method"] == "spawn" and spawned["status"] == "finished"
    here = train_on_disk(folder)
    assert spawned["steps"] == here["steps"] > 0
    assert spawned["history"] == here["history"]  # the same batches in the same order, whoever read the files
    assert process.exitcode == 0
