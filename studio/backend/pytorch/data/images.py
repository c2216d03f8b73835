"""Image folders (REQ-D03): one sub-folder per class holding PNG, JPEG or BMP files.

Files of any other type are skipped and counted. Before a pixel is decoded, every image's
header is checked: its real format must be PNG, JPEG or BMP whatever its name says, and its
width x height must not exceed ``max_pixels`` (a decompression-bomb limit, like Pillow's
``Image.MAX_IMAGE_PIXELS`` but enforced as an error). Problems are collected over the whole
folder and reported together, each with its path, before anything is returned.

Small folders are decoded into one tensor (:class:`LoadedData`); folders whose tensor would
exceed ``memory_limit_mb`` (or with ``on_disk: true``) become a :class:`DiskImageData` read
batch by batch through a DataLoader with workers (see :mod:`disk_images`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.pytorch.data.types import DiskImageData, LoadedData

__all__ = ["IMAGE_SUFFIXES", "ALLOWED_FORMATS", "DEFAULT_MAX_PIXELS", "scan_image_folder", "read_image",
           "check_image", "load_image_folder", "image_options"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
ALLOWED_FORMATS = ("PNG", "JPEG", "BMP")
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MEMORY_LIMIT_MB = 1024


def image_options(options: dict[str, Any]) -> tuple[tuple[int, int], int, int]:
    """``(size (h, w), channels, max_pixels)`` from the spec's options, validated."""
    size = options.get("size", 32)
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 4 <= s <= 1024 for s in size)):
        raise ValidationError(f"Option 'size' must be a whole number from 4 to 1024 or [height, width], not {size!r}.",
                              field="options.size", value=repr(size))
    grayscale = options.get("grayscale", False)
    if not isinstance(grayscale, bool):
        raise ValidationError(f"Option 'grayscale' must be true or false, not {grayscale!r}.",
                              field="options.grayscale", value=repr(grayscale))
    max_pixels = options.get("max_pixels", DEFAULT_MAX_PIXELS)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValidationError(f"Option 'max_pixels' must be a positive whole number, not {max_pixels!r}.",
                              field="options.max_pixels", value=repr(max_pixels))
    return (int(size[0]), int(size[1])), (1 if grayscale else 3), max_pixels


def scan_image_folder(root: str | Path) -> tuple[list[str], list[int], tuple[str, ...], list[str]]:
    """``(image paths, class indices, class names, skipped paths)``; classes are the sorted sub-folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"There is no folder at {root}; choose a folder with one sub-folder per class.",
                        code="data.not_found", field="path", value=str(root))
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    skipped = sorted(str(p) for p in root.iterdir() if p.is_file())
    if not class_dirs:
        raise DataError(f"{root} has no class sub-folders; put each class's images in a sub-folder named after the class.",
                        code="data.no_classes", field="path", value=str(root))
    paths: list[str] = []
    labels: list[int] = []
    for k, folder in enumerate(class_dirs):
        found = 0
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if file.suffix.lower() in IMAGE_SUFFIXES and not file.name.startswith("."):
                paths.append(str(file))
                labels.append(k)
                found += 1
            else:
                skipped.append(str(file))
        if not found:
            raise DataError(f"The class folder {folder} holds no PNG, JPEG or BMP images; add images or remove the folder.",
                            code="data.empty_class", field="path", value=str(folder))
    return paths, labels, tuple(d.name for d in class_dirs), skipped


def _open_checked(path: str, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily and check its real format and pixel count (no pixel is decoded yet)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path} is too large to open safely ({exc}); shrink it.", code="data.image_too_large",
                        field="path", value=path) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path} is not a readable image; replace or remove it.", code="data.bad_image",
                        field="path", value=path) from exc
    if image.format not in ALLOWED_FORMATS:
        image.close()
        raise DataError(f"{path} is a {image.format} file; only PNG, JPEG and BMP are accepted.",
                        code="data.bad_image", field="path", value=path)
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise DataError(f"{path} is {width}x{height} pixels, more than the limit of {max_pixels:,}; shrink it or raise "
                        "max_pixels.", code="data.image_too_large", field="path", value=path)
    return image


def check_image(path: str, max_pixels: int) -> None:
    """Header check only: real format and size (cheap; used for folders read from disk)."""
    _open_checked(path, max_pixels).close()


def read_image(path: str, size: tuple[int, int], channels: int, max_pixels: int) -> np.ndarray:
    """Decode one image to float32 ``(channels, height, width)`` with values 0..1."""
    image = _open_checked(path, max_pixels)
    try:
        with image:
            image.load()
            converted = image.convert("L" if channels == 1 else "RGB")
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.float32) / 255.0
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt pixel data
        raise DataError(f"{path} is damaged and cannot be decoded ({exc}); replace or remove it.",
                        code="data.bad_image", field="path", value=path) from exc
    return array[None] if channels == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))


def _raise_collected(problems: list[DataError], root: Path) -> None:
    codes = {p.code for p in problems}
    code = codes.pop() if len(codes) == 1 else "data.bad_image"
    shown = "; ".join(p.message.rstrip(".") for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise DataError(f"{len(problems)} image file(s) in {root} cannot be used: {shown}{more}.", code=code, field="path",
                    value=[str(p.value) for p in problems]) from problems[0]


def load_image_folder(path: str | Path, options: dict[str, Any] | None = None) -> LoadedData | DiskImageData:
    options = dict(options or {})
    root = Path(path)
    size, channels, max_pixels = image_options(options)
    paths, labels, class_names, skipped = scan_image_folder(root)
    on_disk = options.get("on_disk", "auto")
    if on_disk == "auto":
        limit_mb = options.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB)
        on_disk = len(paths) * channels * size[0] * size[1] * 4 > limit_mb * (1 << 20)
    elif not isinstance(on_disk, bool):
        raise ValidationError(f"Option 'on_disk' must be true, false or 'auto', not {on_disk!r}.",
                              field="options.on_disk", value=repr(on_disk))
    info = {"skipped_files": len(skipped), "skipped": skipped[:50], "path": str(root)}
    description = (f"Images from {root.name}: {len(paths)} pictures in {len(class_names)} classes, resized to "
                   f"{size[0]}x{size[1]} {'grayscale' if channels == 1 else 'RGB'}"
                   + (f"; {len(skipped)} other files skipped." if skipped else "."))
    y = torch.tensor(labels, dtype=torch.int64)
    problems: list[DataError] = []
    if on_disk:
        for p in paths:
            try:
                check_image(p, max_pixels)
            except DataError as exc:
                problems.append(exc)
        if problems:
            _raise_collected(problems, root)
        return DiskImageData(paths=tuple(paths), y=y, class_names=class_names, size=size, channels=channels,
                             max_pixels=max_pixels, name=root.name, description=description, info=info)
    x = np.empty((len(paths), channels, size[0], size[1]), dtype=np.float32)
    for i, p in enumerate(paths):
        try:
            x[i] = read_image(p, size, channels, max_pixels)
        except DataError as exc:
            problems.append(exc)
    if problems:
        _raise_collected(problems, root)
    return LoadedData(x=torch.from_numpy(x), y=y, task="classification", input_kind="image",
                      input_shape=(channels, size[0], size[1]), num_outputs=len(class_names), class_names=class_names,
                      name=root.name, description=description, source="images", info=info)
