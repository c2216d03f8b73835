"""Dirty data sets are reported with path and line, through the handlers, without a crash (REQ-D02, REQ-D03, REQ-H11).

Each data set goes through ``inspect_data`` (what the Data area calls) and ``train``: ragged CSV rows
(short, long, after a quoted value spanning lines, after blank CRLF lines, deep in a large file that the
fast reader takes), a binary file named ``.csv``, and image folders holding a text file renamed ``.jpg``,
a truncated JPEG, decompression bombs (a 144-megapixel PNG of 140 KB, and one Pillow itself refuses),
and an empty class folder. Every problem is a ``data.*`` error whose message names the file and, for
CSV, the line; a folder's problems are reported together, each by path; nothing is decoded from a bomb.
Images read from disk in DataLoader worker processes report a damaged file the same way, and the
workers are stopped at once (they used to be left for the garbage collector, which then froze for 5 s
per worker).
"""

from __future__ import annotations

import gc
import multiprocessing
import pathlib
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from reliability_helpers import handler_error, rss_bytes

from studio.backend.core.errors import DataError
from studio.backend.core.requests import DataSpec, InspectDataRequest, ModelSpec, TrainConfig, TrainRequest
from studio.backend.pytorch import data as data_lib

# name -> (text, line of the bad row, what the message says about it)
RAGGED = {
    "short_row": ("a,b,label\n1,2,0\n3,4,1\n5,6\n7,8,1\n", 4, "has 2 values"),
    "long_row": ("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1,9\n", 5, "has 4 values"),
    "after_a_quoted_newline": ('name,x,label\n"two\nlines",1,0\nb,2,1\nc,3\nd,4,0\n', 5, "has 2 values"),
    "crlf_and_blank_lines": ("a,b,label\r\n1,2,0\r\n\r\n3,4,1\r\n\r\n5\r\n6,7,0\r\n", 6, "has 1 values"),
    "semicolons": ("a;b;label\n1;2;0\n3;4;1\n5;6;0\n7;8\n9;1;1\n", 5, "has 2 values"),
    "deep_in_a_large_file": ("x,y,z,label\n" + "".join(f"{i},{i % 7},{i % 3},{i % 2}\n" for i in range(9000))
                             + "1,2,3\n" + "".join(f"{i},1,2,{i % 2}\n" for i in range(1000)), 9002, "has 3 values"),
}


def _both_handlers(registry, data: DataSpec, model: str = "mlp"):  # noqa: ANN001, ANN201
    """The same error from the Data area's call and from a training run."""
    inspected = handler_error(registry, "inspect_data", InspectDataRequest(data=data))
    trained = handler_error(registry, "train", TrainRequest(data=data, model=ModelSpec(name=model),
                                                            config=TrainConfig(epochs=1, batch_size=8)))
    assert (inspected.code, inspected.message) == (trained.code, trained.message)
    return inspected


@pytest.mark.req("REQ-D02", "REQ-H11")
@pytest.mark.parametrize("case", sorted(RAGGED))
def test_a_ragged_csv_row_is_reported_with_file_and_line(registry, tmp_path: pathlib.Path, case: str) -> None:
    text, line, what = RAGGED[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    err = _both_handlers(registry, DataSpec(source="csv", path=str(path)))
    assert err.code == "data.bad_row" and err.field == "line" and err.value == line
    assert f"Line {line} of {path.name}" in err.message and what in err.message


@pytest.mark.req("REQ-D02", "REQ-H11")
def test_a_binary_file_named_csv_is_reported_as_not_text(registry, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    err = _both_handlers(registry, DataSpec(source="csv", path=str(path)))
    assert err.code == "data.bad_encoding" and path.name in err.message and "UTF-8" in err.message


def _jpeg(path: pathlib.Path, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path.read_bytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(width: int, height: int, *, full: bool) -> bytes:
    """A grayscale PNG of ``width`` x ``height``: with ``full`` all its (zero) rows, compressed ~1000:1."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(squeeze.compress(row) for _ in range(height if full else 4)) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@pytest.fixture
def image_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "pets"
    for k, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            _jpeg(root / name / f"{name}{i}.jpg", seed=10 * k + i)
    return root


@pytest.mark.req("REQ-D03", "REQ-H11")
def test_a_folder_of_dirty_images_reports_every_file_by_path_and_decodes_no_bomb(
        registry, image_folder: pathlib.Path) -> None:
    dirty = {
        "notes.jpg": b"These are my notes about the cat pictures, not a picture.\n" * 20,
        "broken.jpg": (image_folder / "cat" / "cat0.jpg").read_bytes()[:-600],  # the header survives, pixels do not
        "bomb.png": _png_bomb(12_000, 12_000, full=True),  # 144 million pixels in about 140 KB
        "pillow_bomb.png": _png_bomb(20_000, 20_000, full=False),  # beyond Pillow's own bomb limit
    }
    assert len(dirty["bomb.png"]) < 300_000
    for name, content in dirty.items():
        (image_folder / "dog" / name).write_bytes(content)
    (image_folder / "dog" / "readme.txt").write_text("not an image, and not named like one")
    spec = DataSpec(source="images", path=str(image_folder), options={"size": 16})
    before = rss_bytes()
    err = _both_handlers(registry, spec, model="lenet")
    assert rss_bytes() - before < 150 * 2**20, "a bomb was decoded"
    assert err.code in ("data.bad_image", "data.image_too_large") and err.field == "path"
    assert f"{len(dirty)} image file(s) in {image_folder}" in err.message
    for name in dirty:
        assert str(image_folder / "dog" / name) in err.message, name
    assert sorted(err.value) == sorted(str(image_folder / "dog" / name) for name in dirty)
    assert ".." not in err.message
    for name in dirty:
        (image_folder / "dog" / name).unlink(missing_ok=True)
    summary = registry.call("pytorch", "inspect_data", InspectDataRequest(data=spec))  # clean again: it loads
    assert summary.num_samples == 12


@pytest.mark.req("REQ-D03", "REQ-H11")
@pytest.mark.parametrize("content", ["nothing", "only text"])
def test_an_empty_class_folder_is_reported_by_path(registry, image_folder: pathlib.Path, content: str) -> None:
    empty = image_folder / "bird"
    empty.mkdir()
    if content == "only text":
        (empty / "todo.txt").write_text("find bird pictures")
    err = _both_handlers(registry, DataSpec(source="images", path=str(image_folder), options={"size": 16}),
                         model="lenet")
    assert err.code == "data.empty_class" and str(empty) in err.message and err.value == str(empty)


@pytest.mark.req("REQ-D03", "REQ-D07", "REQ-H11")
@pytest.mark.parametrize("workers", [0, 2])
def test_a_damaged_image_read_from_disk_by_workers_is_reported_by_path(image_folder: pathlib.Path,
                                                                      workers: int) -> None:
    """A folder read per batch: the header check passes, the decode in a worker process fails."""
    broken = image_folder / "cat" / "broken.jpg"
    broken.write_bytes((image_folder / "cat" / "cat1.jpg").read_bytes()[:-600])
    data = data_lib.load_data(DataSpec(source="images", path=str(image_folder),
                                       options={"size": 16, "on_disk": True}))
    batches = data_lib.DiskImageBatches(data, torch.arange(len(data.paths)), 4, workers=workers)
    with pytest.raises(DataError) as info:
        for _ in batches.epoch(0):
            pass
    assert info.value.code == "data.bad_image" and str(broken) in info.value.message
    assert multiprocessing.active_children() == []  # the workers were stopped when the error was reported
    started = time.perf_counter()
    del info
    gc.collect()  # collecting the failed epoch waits for nothing (it waited 5 s per worker)
    assert time.perf_counter() - started < 3.0
