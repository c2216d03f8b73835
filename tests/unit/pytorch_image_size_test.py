"""Photos are resized to a size chosen for the model, not to 32x32 (issue 22, point 6).

Real image folders written here, the real ``train``/``inspect_data``/``evaluate`` handlers and the
command line: the size a model declares, else a default by kind of model (never larger than the
images), shown in the terminal, recorded with the checkpoint, and the ``size`` option still wins.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.backend.core.errors import ModelError
from studio.backend.core.registry import default_registry
from studio.backend.core.requests import (
    CatalogueRequest,
    DataSpec,
    EvaluateRequest,
    InspectDataRequest,
    ModelSpec,
    TrainConfig,
    TrainRequest,
)
from studio.backend.pytorch.image_size import CONV_DEFAULT, FLAT_DEFAULT
from studio.backend.pytorch.models import register_model, unregister_model
from studio.cli import run
from studio.cli.exit_codes import OK

ONE_EPOCH = TrainConfig(epochs=1, batch_size=8)


def _folder(root: Path, width: int, height: int) -> Path:
    gen = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            pixels = gen.integers(0, 255, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("photos") / "photos", 320, 240)


def _handler(op: str):
    return default_registry().get("pytorch", op)


def _images(path: Path, **options) -> DataSpec:
    return DataSpec(source="images", name=path.name, path=str(path), options=options)


def _trained_shape(data: DataSpec, model: ModelSpec) -> tuple[tuple[int, ...], dict]:
    from studio.backend.pytorch.model_store import store

    result = _handler("train")(TrainRequest(data=data, model=model, config=ONE_EPOCH))
    tm = store.get(result.model)
    return tuple(tm.input_shape), tm.data.options


def test_a_convolutional_model_gets_photos_at_128_and_the_checkpoint_records_it(photos: Path) -> None:
    shape, options = _trained_shape(_images(photos), ModelSpec(name="lenet", preset="tiny"))
    assert shape == (3, CONV_DEFAULT, CONV_DEFAULT) and options["size"] == CONV_DEFAULT


def test_a_model_that_flattens_pixels_gets_64_to_keep_its_first_layer_small(photos: Path) -> None:
    shape, _ = _trained_shape(_images(photos), ModelSpec(name="mlp", hparams={"hidden": [8]}))
    assert shape == (3, FLAT_DEFAULT, FLAT_DEFAULT)


def test_the_size_option_still_overrides_the_choice(photos: Path) -> None:
    shape, _ = _trained_shape(_images(photos, size=20), ModelSpec(name="lenet", preset="tiny"))
    assert shape == (3, 20, 20)


def test_images_smaller_than_the_default_keep_their_own_size(tmp_path: Path) -> None:
    small = _folder(tmp_path / "icons", 24, 24)
    summary = _handler("inspect_data")(InspectDataRequest(data=_images(small), model=ModelSpec(name="resnet")))
    assert tuple(summary.input_shape) == (3, 24, 24)
    assert "own size" in summary.image_size_note


def test_a_model_can_declare_the_size_it_wants(photos: Path) -> None:
    from studio.backend.pytorch.models.families.lenet import build_lenet as builder

    register_model("sized_net", description="LeNet that prefers 40 pixels.", input_kinds=("image",),
                   schema=(), preferred_image_size=40)(lambda shape, outputs, **_: builder(shape, outputs))
    try:
        summary = _handler("inspect_data")(InspectDataRequest(data=_images(photos), model=ModelSpec(name="sized_net")))
        assert tuple(summary.input_shape) == (3, 40, 40) and "sized_net" in summary.image_size_note
        info = next(m for m in _handler("catalogue")(CatalogueRequest(include_devices=False)).models if m["name"] == "sized_net")
        assert info["preferred_image_size"] == 40  # the hook is visible to the window and the CLI
    finally:
        unregister_model("sized_net")
    with pytest.raises(ModelError):  # a size for a model that takes no images is a registration error
        register_model("flat_sized", description="x", input_kinds=("vector",), preferred_image_size=40)(builder)


def test_evaluate_reads_a_folder_at_the_size_the_model_was_trained_at(photos: Path) -> None:
    result = _handler("train")(TrainRequest(data=_images(photos, size=24), model=ModelSpec(name="lenet", preset="tiny"),
                                            config=ONE_EPOCH))
    evaluated = _handler("evaluate")(EvaluateRequest(model=result.model, data=_images(photos), split="train"))
    assert evaluated.num_samples > 0  # no size given: the model's 24x24, not a default that would not fit


def test_the_terminal_says_which_size_and_why(photos: Path, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["train", "--data", str(photos), "--model", "lenet", "--preset", "tiny", "--epochs", "1",
                "--threads", "1", "--out", str(tmp_path / "m.safetensors")], stdout=out, stderr=err)
    assert code == OK, err.getvalue()
    assert "Images resized to 128x128" in out.getvalue() and "lenet" in out.getvalue()
    out = io.StringIO()
    assert run(["inspect", "data", "--data", str(photos), "--model", "resnet"], stdout=out, stderr=err) == OK
    assert "Images resized to 128x128" in out.getvalue() and "--data-option size=N" in out.getvalue()


def test_a_student_learns_on_images_at_its_teachers_size(photos: Path) -> None:
    from studio.backend.core.requests import DistillRequest

    teacher = _handler("train")(TrainRequest(data=_images(photos, size=24),
                                             model=ModelSpec(name="lenet", preset="tiny"), config=ONE_EPOCH))
    result = _handler("distill")(DistillRequest(teacher=teacher.model, student=ModelSpec(name="mlp",
                                                hparams={"hidden": [8]}), data=_images(photos), config=ONE_EPOCH))
    from studio.backend.pytorch.model_store import store

    assert tuple(store.get(result.train.model).input_shape) == (3, 24, 24)  # not the student's own default of 64
