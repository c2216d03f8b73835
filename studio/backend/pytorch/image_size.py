"""The size an image folder is resized to, chosen for the model (issue 22: photos defaulted to 32x32).

In order: the data's ``size`` option when given; the input size of a model already trained (resume,
evaluation: the data must match it); the model's own ``preferred_image_size`` (a pretrained backbone
declares the size it was trained at); otherwise a default by kind of model, never larger than the
images themselves:

- convolutional models (those that take only images): 128x128. Objects in a photo stay
  recognisable at 128 (at 32, a photo crop is a few blobs), and it costs about a third of the
  compute of ImageNet's 224 on a laptop CPU; these models pool globally, so any size works.
- models that flatten the pixels (mlp, linear): 64x64, since their first layer grows with the pixel
  count (64x64 RGB is 12,288 inputs; at 128 an MLP's first layer alone has millions of weights).

Folders of images smaller than the default (icons, digits) keep their own median size.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

from PIL import Image

from studio.backend.core.errors import StudioError
from studio.backend.core.requests import DataSpec, ModelSpec
from studio.backend.pytorch.models import get_model_info

__all__ = ["CONV_DEFAULT", "FLAT_DEFAULT", "image_size_for"]

CONV_DEFAULT = 128
FLAT_DEFAULT = 64
_SAMPLED = 200  # image headers read to find the folder's own size


def _own_side(folder: str | None) -> int | None:
    """The median longer side of (up to 200 of) the folder's images, from their headers alone."""
    from studio.backend.pytorch.data.images import scan_image_folder

    if not folder:
        return None
    try:
        paths = scan_image_folder(Path(folder))[0]
    except StudioError:
        return None  # loading the data reports the problem
    step = max(1, len(paths) // _SAMPLED)
    sides = []
    for path in paths[::step]:
        try:
            with Image.open(path) as image:
                sides.append(max(image.size))
        except OSError:
            continue  # loading the data names the broken file
    return int(statistics.median(sides)) if sides else None


def _model_default(model: ModelSpec) -> tuple[int, str, bool]:
    """(side, why, declared by the model)."""
    try:
        info = get_model_info(model.name)
    except StudioError:
        return FLAT_DEFAULT, "Studio's default", False  # an unknown model is reported when it is built
    if info.preferred_image_size:
        return info.preferred_image_size, f"the input size {info.name} declares", True
    if "vector" in info.input_kinds:
        return FLAT_DEFAULT, f"Studio's default for {info.name}, which flattens the pixels", False
    return CONV_DEFAULT, f"Studio's default for photos with {info.name}, a convolutional model", False


def image_size_for(data: DataSpec, model: ModelSpec | None = None,
                   input_shape: tuple[int, ...] | None = None) -> tuple[DataSpec, str]:
    """``data`` with its image ``size`` option set, and a sentence saying which size and why ("" for data
    that are not an image folder). ``input_shape`` is a trained model's (channels, height, width)."""
    if data.source != "images":
        return data, ""
    given = data.options.get("size")
    if given is not None:
        h, w = (given, given) if isinstance(given, int) else tuple(given)
        return data, f"Images resized to {h}x{w}, as the size option says."
    if input_shape is not None and len(input_shape) == 3:
        size: int | list[int] = [int(input_shape[1]), int(input_shape[2])]
        why, text = "the size the model was trained at", f"{input_shape[1]}x{input_shape[2]}"
    else:
        side, why, declared = _model_default(model or ModelSpec())
        own = None if declared else _own_side(data.path)
        if own is not None and own < side:
            side, why = max(4, own), f"the images' own size, smaller than {why} ({side})"
        size, text = side, f"{side}x{side}"
    spec = dataclasses.replace(data, options={**data.options, "size": size})
    return spec, f"Images resized to {text}: {why}. The size option changes it (--data-option size=N)."
