"""Unit tests of the data package (PT-DATA-001, REQ-D01..D09), on small files written to tmp_path."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.core.requests import DataSpec
from studio.backend.core.results import DataSummary
from studio.backend.pytorch.data import (  # noqa: I001 - modules, not names
    Augmenter,
    DiskImageBatches,
    DiskImageData,
    LoadedData,
    Preprocessing,
    arrays_to_data,
    augmenter_from_spec,
    builtin_datasets,
    csv_table,
    encode_features,
    epoch_permutation,
    fit_preprocessing,
    load_data,
    read_csv_table,
    split_data,
    split_indices,
    summarize,
)

SMALL = {"two_moons": {"samples": 200}, "spirals": {"samples": 150}, "shapes": {"samples": 60}, "sine": {"samples": 100}}


def builtin(name: str, seed: int = 0, **options) -> LoadedData:
    return load_data(DataSpec(source="builtin", name=name, seed=seed, options={**SMALL.get(name, {}), **options}))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def csv_data(path, **options) -> LoadedData:
    return load_data(DataSpec(source="csv", path=str(path), target=options.pop("target", None), options=options))


def save_image(path, seed: int, size=(12, 10), mode="RGB", fmt=None) -> None:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, format=fmt)


def image_folder(root, per_class: int = 4):
    """Three classes, one file format each, plus one text file to skip."""
    for k, (cls, ext) in enumerate((("cat", "png"), ("dog", "jpg"), ("fox", "bmp"))):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            save_image(root / cls / f"{i}.{ext}", seed=10 * k + i)
    write(root / "dog" / "notes.txt", "not an image")
    return root


# ---------------------------------------------------------------- REQ-D01 built-in datasets


EXPECTED = {
    "digits": ("classification", "image", (1, 8, 8), 10),
    "iris": ("classification", "vector", (4,), 3),
    "wine": ("classification", "vector", (13,), 3),
    "breast_cancer": ("binary", "vector", (30,), 1),
    "two_moons": ("classification", "vector", (2,), 2),
    "spirals": ("classification", "vector", (2,), 3),
    "shapes": ("classification", "image", (1, 32, 32), 3),
    "sine": ("regression", "sequence", (32, 1), 1),
}


@pytest.mark.req("REQ-D01")
def test_every_builtin_loads_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    assert [d[0] for d in builtin_datasets()] == list(EXPECTED)
    for name, (task, kind, shape, outputs) in EXPECTED.items():
        data = builtin(name)
        assert (data.task, data.input_kind, data.input_shape, data.num_outputs) == (task, kind, shape, outputs), name
        assert data.x.dtype == torch.float32 and tuple(data.x.shape[1:]) == shape
        assert torch.isfinite(data.x).all()
        if task == "classification":
            assert data.y.dtype == torch.int64 and int(data.y.max()) == outputs - 1
            assert len(data.class_names) == outputs
        else:
            assert data.y.dtype == torch.float32 and data.y.shape == (data.num_samples, outputs)
    digits = builtin("digits")
    assert digits.num_samples == 1797 and float(digits.x.min()) == 0.0 and float(digits.x.max()) == 1.0
    cancer = builtin("breast_cancer")
    assert cancer.class_names == ("malignant", "benign") and set(cancer.y.flatten().tolist()) == {0.0, 1.0}


@pytest.mark.req("REQ-D01")
def test_digits_come_from_scikit_learns_own_file_without_importing_it():
    """The default dataset is on the first step's path: read from the wheel's file, no second-long import."""
    from sklearn.datasets import load_digits

    reference = load_digits()
    digits = builtin("digits")
    assert torch.equal(digits.x, torch.from_numpy((reference.images / 16.0).astype(np.float32)).unsqueeze(1))
    assert torch.equal(digits.y, torch.from_numpy(reference.target.astype(np.int64)))
    code = ("import sys; from studio.backend.pytorch.data.builtin import load_builtin; "
            "d = load_builtin('digits'); "
            "print(d.num_samples, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["1797", "False"]


@pytest.mark.req("REQ-D01")
def test_generated_datasets_repeat_for_a_seed_and_change_with_it():
    for name in ("two_moons", "spirals", "shapes", "sine"):
        a, b, c = builtin(name, seed=1), builtin(name, seed=1), builtin(name, seed=2)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y), name
        assert not torch.equal(a.x, c.x), name


@pytest.mark.req("REQ-D01")
def test_shapes_are_three_balanced_classes_of_varied_single_shapes():
    data = builtin("shapes", samples=90, size=28)
    assert data.input_shape == (1, 28, 28) and data.class_names == ("circle", "square", "triangle")
    assert torch.bincount(data.y).tolist() == [30, 30, 30]
    ink = data.x.sum(dim=(1, 2, 3))
    assert (ink > 5).all() and float(data.x.max()) <= 1.0 and float(data.x.min()) >= 0.0
    squares = data.x[data.y == 1]
    assert len({round(float(s.sum()), 2) for s in squares}) > 20  # random sizes and angles
    with pytest.raises(ValidationError) as err:
        builtin("shapes", size=10)
    assert err.value.field == "options.size"


@pytest.mark.req("REQ-D01")
def test_builtin_descriptions_are_plain_paragraphs_and_unknown_names_are_listed():
    for name, description, _task, _kind in builtin_datasets():
        assert len(description) > 150 and description.endswith(".") and "\n" not in description, name
        assert builtin(name).description == description
    with pytest.raises(DataError) as err:
        builtin("mnist")
    assert err.value.code == "data.not_found" and "iris" in err.value.message and "sine" in err.value.message


# ---------------------------------------------------------------- REQ-D02 CSV files


@pytest.mark.req("REQ-D02")
def test_csv_with_header_categorical_feature_and_named_classes(tmp_path):
    path = write(tmp_path / "pets.csv", "weight,colour,age,kind\n4.0,black,3,cat\n30,brown,5,dog\n5.5,white,1,cat\n"
                                        "25,black,7,dog\n0.1,white,2,fish\n")
    data = csv_data(path, target="kind")
    assert data.feature_names == ("weight", "colour=black", "colour=brown", "colour=white", "age")
    assert data.x.tolist()[1] == [30.0, 0.0, 1.0, 0.0, 5.0]
    assert data.class_names == ("cat", "dog", "fish") and data.y.tolist() == [0, 1, 0, 1, 2]
    assert data.task == "classification" and data.num_outputs == 3 and data.input_shape == (5,)
    enc = data.info["encoding"]["columns"][1]
    assert enc == {"name": "colour", "kind": "category", "categories": ["black", "brown", "white"], "fill": None}
    # the target by name may sit anywhere; default target is the last column
    middle = csv_data(path, target="colour")
    assert middle.class_names == ("black", "brown", "white") and "kind=dog" in middle.feature_names


@pytest.mark.req("REQ-D02")
def test_csv_without_header_and_with_semicolons(tmp_path):
    plain = write(tmp_path / "plain.csv", "1.5,2,0\n-3,4.25,1\n5,6,1\n")
    data = csv_data(plain)
    assert data.num_samples == 3 and data.feature_names == ("column_1", "column_2")
    assert data.x.tolist() == [[1.5, 2.0], [-3.0, 4.25], [5.0, 6.0]] and data.y.tolist() == [0, 1, 1]
    semi = write(tmp_path / "semi.csv", "a;b;label\n1.5;2;x\n3;4;y\n")
    data = csv_data(semi)
    assert data.feature_names == ("a", "b") and data.class_names == ("x", "y")


@pytest.mark.req("REQ-D02")
def test_a_ragged_row_is_reported_with_its_line_number(tmp_path):
    rows = ["a,b,c"] + [f"{i},{i + 1},{i % 2}" for i in range(5)] + ["7,8"] + ["1,2,1"]
    numeric = write(tmp_path / "numeric.csv", "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        csv_data(numeric)
    assert err.value.code == "data.bad_row" and "line 7" in err.value.message.lower() and err.value.value == 7
    text = write(tmp_path / "text.csv", "\n".join(r + ",x" for r in rows[:6]) + "\n1,2,3,x,extra\n")
    with pytest.raises(DataError) as err:
        csv_data(text)
    assert err.value.code == "data.bad_row" and "line 7" in err.value.message.lower()


@pytest.mark.req("REQ-D02")
def test_csv_bad_inputs_name_what_and_where(tmp_path):
    with pytest.raises(DataError) as err:
        csv_data(write(tmp_path / "t.csv", "a,b,y\n1,2,0\n3,4,1\n"), target="label")
    assert err.value.code == "data.missing_target" and "'a', 'b', 'y'" in err.value.message
    with pytest.raises(DataError) as err:
        csv_data(write(tmp_path / "e.csv", ""))
    assert err.value.code == "data.empty"
    with pytest.raises(DataError) as err:
        csv_data(tmp_path / "nope.csv")
    assert err.value.code == "data.not_found"
    lines = "a,b,y\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(30)) + "5,seven,1\n"
    with pytest.raises(DataError) as err:
        csv_data(write(tmp_path / "v.csv", lines))
    assert err.value.code == "data.bad_value" and "line 32" in err.value.message and "'seven'" in err.value.message


@pytest.mark.req("REQ-D02")
@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e39"])
@pytest.mark.parametrize("rows", [5, 3000])  # a small file, and one the fast path cuts from Arrow's batches
def test_values_that_are_not_finite_numbers_are_refused_naming_column_and_line(tmp_path, cell, rows):
    body = [f"{i},{i * 0.5},{i % 3}" for i in range(rows)]
    body[rows - 2] = f"{rows - 2},{cell},1"
    path = write(tmp_path / "f.csv", "a,b,y\n" + "\n".join(body) + "\n")
    with pytest.raises(DataError) as err:
        csv_data(path, missing="mean")  # imputation is for empty cells, not for wrong ones
    assert err.value.code == "data.bad_value" and err.value.field == "b"
    assert f"line {rows}" in err.value.message and "'b'" in err.value.message and "f.csv" in err.value.message
    target = write(tmp_path / "t.csv", "a,price\n1,2.5\n2,inf\n3,4.25\n")
    with pytest.raises(DataError) as err:
        csv_data(target, task="regression")
    assert err.value.field == "price" and "line 3" in err.value.message
    good = csv_data(write(tmp_path / "g.csv", "a,b,y\n1,3.4e38,0\n2,-1e-45,1\n"))  # float32's extremes still load
    assert torch.isfinite(good.x).all()


@pytest.mark.req("REQ-D02")
def test_missing_values_are_rejected_or_imputed_as_configured(tmp_path):
    path = write(tmp_path / "m.csv", "a,b,y\n1,10,0\n2,,1\n4,30,0\n9,NA,1\n")
    with pytest.raises(DataError) as err:
        csv_data(path)
    assert err.value.code == "data.missing_values" and "'b'" in err.value.message and "line 3" in err.value.message
    assert csv_data(path, missing="mean").x[:, 1].tolist() == [10.0, 20.0, 30.0, 20.0]
    path = write(tmp_path / "m2.csv", "a,b,y\n1,10,0\n2,,1\n4,30,0\n9,90,1\n")
    assert csv_data(path, missing="median").x[1, 1].item() == 30.0
    with pytest.raises(ValidationError) as err:
        csv_data(path, missing="zero")
    assert err.value.field == "options.missing"
    with pytest.raises(DataError) as err:  # a missing label is never imputed
        csv_data(write(tmp_path / "m3.csv", "a,y\n1,0\n2,\n"), missing="mean")
    assert err.value.code == "data.missing_values" and "line 3" in err.value.message


@pytest.mark.req("REQ-D02")
def test_numeric_targets_become_classes_or_regression(tmp_path):
    classes = csv_data(write(tmp_path / "c.csv", "x,y\n0.5,2\n1.5,0\n2.5,1\n3.5,2\n"))
    assert classes.task == "classification" and classes.class_names == ("0", "1", "2") and classes.y.tolist() == [2, 0, 1, 2]
    reg = csv_data(write(tmp_path / "r.csv", "x,price\n1,10.5\n2,20.25\n3,30\n"))
    assert reg.task == "regression" and reg.y.shape == (3, 1) and reg.target_names == ("price",)
    forced = csv_data(tmp_path / "c.csv", task="regression")
    assert forced.task == "regression" and forced.y[:, 0].tolist() == [2.0, 0.0, 1.0, 2.0]


def read_both(path, monkeypatch, **options):
    """The table read by pyarrow (whichever step takes it) and by the csv module alone."""
    arrow = read_csv_table(path, **options)
    with monkeypatch.context() as m:
        m.setattr(csv_table, "_read_with_arrow", lambda *a, **k: False)
        plain = read_csv_table(path, **options)
    assert plain.reader == "csv"
    return arrow, plain


def assert_same_table(a, b):
    assert (a.names, a.num_rows, a.has_header) == (b.names, b.num_rows, b.has_header)
    for j in range(len(a.names)):
        assert a.columns[j].dtype == b.columns[j].dtype, a.names[j]
        if a.columns[j].dtype.kind == "f":
            np.testing.assert_array_equal(a.columns[j], b.columns[j])
        else:
            assert a.columns[j].tolist() == b.columns[j].tolist()
        np.testing.assert_array_equal(a.missing[j], b.missing[j])
    assert a.line_numbers.tolist() == b.line_numbers.tolist()


@pytest.mark.req("REQ-D02")
def test_numeric_fast_path_matches_the_general_reader(tmp_path, monkeypatch):
    cells = ["-0.5", "+2", ".25", "7.", "123456.789", "-0.000001", "42", "3.14159265358979", "0", "-99", "1e-3", "NA"]
    rows = [",".join(cells[(i + j) % len(cells)] for j in range(4)) + "\r\n" for i in range(40)]
    path = write(tmp_path / "n.csv", "a,b,c,d\r\n" + "".join(rows[:20]) + "\r\n" + "".join(rows[20:]) + "\r\n")
    fast, slow = read_both(path, monkeypatch)
    assert fast.fast_path and fast.reader == "arrow-numbers" and fast.num_rows == 40 and fast.names == ("a", "b", "c", "d")
    assert_same_table(fast, slow)
    assert fast.line_numbers[19:21].tolist() == [21, 23]  # the blank line 22 is not a row
    assert fast.numeric_block([0, 1]) is None  # columns with missing cells go through imputation
    full = write(tmp_path / "full.csv", "".join(r.replace("NA", "5") for r in rows))
    fast, slow = read_both(full, monkeypatch)
    assert fast.fast_path and not fast.has_header
    np.testing.assert_array_equal(fast.numeric_block([3, 1]), np.stack([slow.columns[3], slow.columns[1]], 1).astype(np.float32))


@pytest.mark.req("REQ-D02")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=30),
       st.sampled_from(["%.6f", "%.2f", "%g", "%.0f", "%.12g", "%.17g", "%e"]))
def test_fast_path_reads_the_numbers_the_csv_module_reads(tmp_path_factory, rows, fmt):
    texts = [[fmt % v for v in row] for row in rows]
    path = tmp_path_factory.mktemp("h") / "h.csv"
    write(path, "p,q,r\n" + "".join(",".join(r) + "\n" for r in texts))
    table = read_csv_table(path)
    assert table.fast_path and table.num_rows == len(rows)
    expected = np.array([[float(t) for t in r] for r in texts], dtype=np.float64)
    for j in range(3):
        np.testing.assert_array_equal(table.columns[j], expected[:, j])
    np.testing.assert_array_equal(table.numeric_block([0, 1, 2]), expected.astype(np.float32))


@pytest.mark.req("REQ-D02")
def test_files_the_fast_path_declines_read_as_the_csv_module_reads_them(tmp_path, monkeypatch):
    texts = {"quoted": 'a,b\n1,"2"\n"3",4\n', "spaced": "a,b\n 1 , NA\n3,4\n", "text": "a,b\n1,x\n3,y\n",
             "quoted_comma": 'a,b\n1,"x,y"\n3,"multi\nline"\n5,z\n', "blank_lines": "a,b\n1,x\n\n\n3,y\n",
             "few_numbers": "a,b\n" + "".join(f"{i},v{i % 3}\n" for i in range(9)) + "1.5,2\n"}
    readers = {}
    for name, text in texts.items():
        arrow, plain = read_both(write(tmp_path / f"{name}.csv", text), monkeypatch)
        assert not arrow.fast_path, name
        assert_same_table(arrow, plain)
        readers[name] = arrow.reader
    assert readers == dict.fromkeys(texts, "arrow-text")
    cases = {"ragged": "a,b\n1,2\n3\n", "whitespace_line": "a,b\n1,2\n   \n3,4\n", "one_column": "a\n1\n \n2\n",
             "leading_blank": "\n\na,b\n1,2\n3,4\n", "header_over_two_lines": '"a\nx",b\n1,2\n3,4\n'}
    for name, text in cases.items():
        path = write(tmp_path / f"{name}.csv", text)
        if name == "ragged":
            with pytest.raises(DataError) as err:
                read_csv_table(path)
            assert err.value.code == "data.bad_row" and err.value.value == 3
            continue
        table = read_csv_table(path)
        assert table.reader == "csv" and table.num_rows == 2, name
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("a,b\n1,2\n3,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_csv_table(bad)
    assert err.value.code == "data.bad_encoding"


@pytest.mark.req("REQ-D02")
def test_errors_after_a_fast_read_name_the_line(tmp_path):
    rows = "".join(f"{i},{i * 2}.5,{i % 3}\n" for i in range(30))  # rows[:40] is the first five rows
    path = write(tmp_path / "gap.csv", "a,b,y\n" + rows[:40] + "\n\n" + rows[40:].replace("12,24.5", "12,", 1))
    assert read_csv_table(path).fast_path
    with pytest.raises(DataError) as err:
        csv_data(path)
    assert err.value.code == "data.missing_values" and "line 16" in err.value.message and err.value.value == 16
    assert csv_data(path, missing="mean").x[12, 1].item() == pytest.approx(np.mean([i * 2 + 0.5 for i in range(30) if i != 12]))
    path = write(tmp_path / "seven.csv", "a,b,y\n" + rows[:40] + "\n\n" + rows[40:].replace("12,24.5", "12,seven", 1))
    with pytest.raises(DataError) as err:
        csv_data(path)
    assert err.value.code == "data.bad_value" and "line 16" in err.value.message and "'seven'" in err.value.message


@pytest.mark.req("REQ-D02")
def test_stored_encoding_encodes_another_file_the_same_way(tmp_path):
    train = csv_data(write(tmp_path / "a.csv", "size,colour,y\n1,red,0\n2,blue,1\n3,green,0\n"))
    other = read_csv_table(write(tmp_path / "b.csv", "colour,size\ngreen,7\nred,8\n"))
    x = encode_features(other, train.info["encoding"])
    assert x.tolist() == [[7.0, 0.0, 1.0, 0.0], [8.0, 0.0, 0.0, 1.0]]
    with pytest.raises(DataError) as err:
        encode_features(read_csv_table(write(tmp_path / "c.csv", "colour,size\npink,7\n")), train.info["encoding"])
    assert err.value.code == "data.unknown_category" and "'pink'" in err.value.message
    with pytest.raises(DataError) as err:  # rows to predict on are held to the same rule as training rows
        encode_features(read_csv_table(write(tmp_path / "d.csv", "colour,size\nred,1\nred,-inf\n")),
                        train.info["encoding"])
    assert err.value.code == "data.bad_value" and err.value.field == "size" and "line 3" in err.value.message


# ---------------------------------------------------------------- REQ-D03 image folders


@pytest.mark.req("REQ-D03")
def test_image_folder_classes_size_channels_and_skipped_files(tmp_path):
    root = image_folder(tmp_path / "pets")
    rgb = load_data(DataSpec(source="images", path=str(root), options={"size": [8, 6]}))
    assert rgb.class_names == ("cat", "dog", "fox") and rgb.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert rgb.x.shape == (12, 3, 8, 6) and rgb.input_shape == (3, 8, 6) and rgb.info["skipped_files"] == 1
    assert 0.0 <= float(rgb.x.min()) and float(rgb.x.max()) <= 1.0
    gray = load_data(DataSpec(source="images", path=str(root), options={"size": 5, "grayscale": True}))
    assert gray.x.shape == (12, 1, 5, 5)
    expected = np.asarray(Image.open(root / "cat" / "0.png").convert("L").resize((5, 5), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(gray.x[0, 0].numpy(), expected / 255.0, atol=1e-6)


@pytest.mark.req("REQ-D03")
def test_unreadable_and_oversized_images_are_reported_by_path(tmp_path):
    root = image_folder(tmp_path / "pets", per_class=2)
    fake = root / "cat" / "fake.png"
    write(fake, "just text")
    truncated = root / "dog" / "cut.jpg"
    save_image(truncated, seed=5, size=(64, 64))
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="images", path=str(root)))
    assert err.value.code == "data.bad_image"
    assert str(fake) in err.value.message and str(truncated) in err.value.message
    assert sorted(err.value.value) == sorted([str(fake), str(truncated)])
    fake.unlink()
    truncated.unlink()
    big = root / "fox" / "big.png"
    Image.new("L", (400, 300)).save(big)
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="images", path=str(root), options={"max_pixels": 100_000}))
    assert err.value.code == "data.image_too_large" and str(big) in err.value.message and "400x300" in err.value.message
    gif = root / "fox" / "anim.png"
    Image.new("P", (4, 4)).save(gif, format="GIF")
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="images", path=str(root), options={"on_disk": True}))
    assert err.value.code == "data.bad_image" and "GIF" in err.value.message and str(gif) in err.value.message


@pytest.mark.req("REQ-D03")
def test_folders_without_classes_or_with_an_empty_class_are_errors(tmp_path):
    (tmp_path / "flat").mkdir()
    save_image(tmp_path / "flat" / "a.png", 0)
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="images", path=str(tmp_path / "flat")))
    assert err.value.code == "data.no_classes"
    root = image_folder(tmp_path / "pets", per_class=1)
    (root / "owl").mkdir()
    write(root / "owl" / "readme.md", "no pictures")
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="images", path=str(root)))
    assert err.value.code == "data.empty_class" and "owl" in err.value.message


@pytest.mark.req("REQ-D03")
def test_large_folders_stay_on_disk_with_the_same_description(tmp_path):
    root = image_folder(tmp_path / "pets")
    memory = load_data(DataSpec(source="images", path=str(root), options={"size": 6}))
    disk = load_data(DataSpec(source="images", path=str(root), options={"size": 6, "memory_limit_mb": 0}))
    assert isinstance(disk, DiskImageData) and not disk.in_memory
    assert (disk.class_names, disk.input_shape, disk.num_samples) == (memory.class_names, memory.input_shape, 12)
    assert torch.equal(disk.y, memory.y) and disk.info["skipped_files"] == 1


# ---------------------------------------------------------------- REQ-D04 NumPy files


@pytest.mark.req("REQ-D04")
def test_npz_and_npy_pairs_load_with_validated_shapes(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5)), rng.integers(0, 3, 20)
    np.savez(tmp_path / "d.npz", X=x, y=y)
    data = load_data(DataSpec(source="numpy", path=str(tmp_path / "d.npz")))
    assert data.task == "classification" and data.input_shape == (5,) and data.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(data.x.numpy(), x.astype(np.float32))
    (tmp_path / "pair").mkdir()
    np.save(tmp_path / "pair" / "X.npy", rng.normal(size=(6, 4, 2)))
    np.save(tmp_path / "pair" / "y.npy", rng.normal(size=(6, 2)))
    seq = load_data(DataSpec(source="numpy", path=str(tmp_path / "pair")))
    assert (seq.task, seq.input_kind, seq.input_shape, seq.num_outputs) == ("regression", "sequence", (4, 2), 2)
    same = load_data(DataSpec(source="numpy", path=str(tmp_path / "pair" / "X.npy")))
    assert torch.equal(same.x, seq.x)
    images = rng.integers(0, 256, (3, 7, 9, 3), dtype=np.uint8)  # channels last, bytes
    img = arrays_to_data(images, np.array([0, 1, 1]))
    assert img.input_kind == "image" and img.input_shape == (3, 7, 9)
    assert float(img.x[1, 2, 4, 5]) == pytest.approx(images[1, 4, 5, 2] / 255.0)


class _Trap:
    def __reduce__(self):
        return (print, ("UNPICKLED",))


@pytest.mark.req("REQ-D04")
def test_pickled_object_arrays_are_refused_without_unpickling(tmp_path, capsys):
    objects = np.empty(3, dtype=object)
    objects[:] = [_Trap(), _Trap(), _Trap()]
    np.savez(tmp_path / "evil.npz", X=objects, y=np.arange(3))
    np.save(tmp_path / "evilX.npy", objects, allow_pickle=True)
    np.save(tmp_path / "evily.npy", np.arange(3))
    for name in ("evil.npz", "evilX.npy"):
        with pytest.raises(DataError) as err:
            load_data(DataSpec(source="numpy", path=str(tmp_path / name)))
        assert err.value.code == "data.pickle_refused" and name in err.value.message
    assert "UNPICKLED" not in capsys.readouterr().out


@pytest.mark.req("REQ-D04")
def test_bad_arrays_give_their_codes(tmp_path):
    np.savez(tmp_path / "len.npz", X=np.zeros((10, 2)), y=np.zeros(9, dtype=int))
    np.savez(tmp_path / "keys.npz", inputs=np.zeros((3, 2)), targets=np.zeros(3))
    np.savez(tmp_path / "text.npz", X=np.array([["a", "b"]] * 2), y=np.zeros(2, dtype=int))
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0, np.nan], [0.0, 1.0]]), y=np.zeros(2, dtype=int))
    np.savez(tmp_path / "flat.npz", X=np.zeros(4), y=np.zeros(4, dtype=int))
    expected = {"len.npz": ("data.bad_shape", "10"), "keys.npz": ("data.missing_array", "'inputs'"),
                "text.npz": ("data.bad_dtype", "dtype"), "nan.npz": ("data.missing_values", "sample 0"),
                "flat.npz": ("data.bad_shape", "(4,)")}
    for name, (code, fragment) in expected.items():
        with pytest.raises(DataError) as err:
            load_data(DataSpec(source="numpy", path=str(tmp_path / name)))
        assert err.value.code == code and fragment in err.value.message, name
    assert "9" in str(pytest.raises(DataError, load_data, DataSpec(source="numpy", path=str(tmp_path / "len.npz"))).value)


# ---------------------------------------------------------------- REQ-D05 splits


@pytest.mark.req("REQ-D05")
def test_splits_are_disjoint_complete_deterministic_and_stratified():
    data = builtin("wine")
    s = split_data(data, 0.2, 0.1, seed=3)
    parts = [s.train, s.val, s.test]
    assert sorted(torch.cat(parts).tolist()) == list(range(178))
    assert s.sizes() == {"train": 124, "val": 36, "test": 18}
    again = split_data(data, 0.2, 0.1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(parts, [again.train, again.val, again.test]))
    assert not torch.equal(split_data(data, 0.2, 0.1, seed=4).val, s.val)
    overall = torch.bincount(data.y).double() / 178
    for part in parts:
        counts = torch.bincount(data.y[part], minlength=3).double()
        assert (counts - overall * part.numel()).abs().max() <= 1.0
    cancer = builtin("breast_cancer")  # binary data are stratified too
    val = split_data(cancer, 0.25, 0.0, 0).val
    assert abs(float(cancer.y[val].mean()) - float(cancer.y.mean())) < 0.01


@pytest.mark.req("REQ-D05")
def test_unstratified_split_sizes_are_exact():
    s = split_indices(1001, None, val_fraction=0.15, test_fraction=0.05, seed=0)
    assert s.sizes() == {"train": 801, "val": 150, "test": 50}
    sine = split_data(builtin("sine"), 0.3, 0.0, 1)
    assert sine.sizes() == {"train": 70, "val": 30, "test": 0}


@pytest.mark.req("REQ-D05")
def test_bad_fractions_are_refused_naming_the_field():
    data = builtin("iris")
    cases = [(-0.1, 0.0, "data.val_fraction"), (1.0, 0.0, "data.val_fraction"), (math.nan, 0.0, "data.val_fraction"),
             (0.2, 1.5, "data.test_fraction"), (0.6, 0.5, "data.test_fraction"), (True, 0.0, "data.val_fraction")]
    for val, test, field in cases:
        with pytest.raises(ValidationError) as err:
            split_data(data, val, test, 0)
        assert err.value.field == field and err.value.code == "request.invalid", (val, test)
    with pytest.raises(ValidationError):
        split_indices(2, None, 0.5, 0.4, 0)  # nothing left to train on


# ---------------------------------------------------------------- REQ-D06 normalisation


@pytest.mark.req("REQ-D06")
def test_feature_statistics_come_from_the_training_split_only():
    data = builtin("wine")
    s = split_data(data, 0.25, 0.1, 0)
    prep = fit_preprocessing(data, s.train)
    train = data.x[s.train].double().numpy()
    np.testing.assert_allclose(prep.x_mean, train.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(prep.x_std, train.std(axis=0), rtol=1e-9)
    changed = LoadedData(**{**data.__dict__, "x": data.x.clone()})
    changed.x[s.val] += 1000.0
    changed.x[s.test] *= -5.0
    assert fit_preprocessing(changed, s.train) == prep
    z = prep.apply(data.x[s.train])
    assert torch.allclose(z.mean(0), torch.zeros(13), atol=1e-4) and torch.allclose(z.std(0, unbiased=False), torch.ones(13), atol=1e-4)


@pytest.mark.req("REQ-D06")
def test_image_channels_and_regression_targets_are_scaled_and_round_trip_through_json():
    imgs = arrays_to_data(np.stack([np.full((2, 3, 3), c, dtype=np.float32) for c in range(10)]) * [[[1.0]], [[3.0]]],
                          np.arange(10, dtype=np.float64) * 2 + 1)
    idx = torch.arange(0, 6)
    prep = fit_preprocessing(imgs, idx)
    assert prep.x_mean == pytest.approx((2.5, 7.5)) and prep.x_std == pytest.approx((math.sqrt(35 / 12), 3 * math.sqrt(35 / 12)))
    assert prep.y_mean == pytest.approx((6.0,)) and prep.y_std == pytest.approx((2 * math.sqrt(35 / 12),))
    restored = Preprocessing.from_json(prep.to_json())
    assert restored == prep and json.loads(restored.to_json()) == json.loads(prep.to_json())
    assert torch.equal(restored.apply(imgs.x), prep.apply(imgs.x))
    y = imgs.y
    assert torch.allclose(prep.inverse_target(prep.apply_target(y)), y, atol=1e-6)
    const = arrays_to_data(np.ones((4, 2)), np.arange(4))
    assert fit_preprocessing(const, torch.arange(4)).x_std == (1.0, 1.0)
    with pytest.raises(DataError) as err:
        prep.apply(torch.zeros(2, 3, 3, 3))
    assert err.value.code == "data.bad_shape"


@pytest.mark.req("REQ-D06")
def test_on_disk_statistics_equal_in_memory_statistics(tmp_path):
    root = image_folder(tmp_path / "pets")
    memory = load_data(DataSpec(source="images", path=str(root), options={"size": 6}))
    disk = load_data(DataSpec(source="images", path=str(root), options={"size": 6, "on_disk": True}))
    train = torch.tensor([0, 2, 3, 5, 8, 11])
    a, b = fit_preprocessing(memory, train), fit_preprocessing(disk, train, batch_size=4)
    assert a.x_mean == pytest.approx(b.x_mean, abs=1e-6) and a.x_std == pytest.approx(b.x_std, abs=1e-6)


# ---------------------------------------------------------------- REQ-D07 batching


@pytest.mark.req("REQ-D07")
def test_in_memory_epochs_are_seeded_permutations_cut_by_indexing():
    """What the trainer does per epoch: a seeded order, cut into steps of micro-batches by indexing."""
    from studio.backend.pytorch.trainer.batching import EpochPlan, epoch_order

    plan = EpochPlan(50, 8)
    assert (plan.micro_batches, plan.steps) == (7, 7) and EpochPlan(50, 8, accumulate=2).steps == 4
    first = epoch_order(7, 3, 50)
    assert sorted(first.tolist()) == list(range(50))
    torch.manual_seed(123)  # the global random state has no say
    assert torch.equal(epoch_order(7, 3, 50), first)
    assert not torch.equal(epoch_order(7, 4, 50), first) and not torch.equal(epoch_order(8, 3, 50), first)
    assert torch.equal(first, epoch_permutation(50, 7, 3))
    steps = [torch.cat(micro) for micro in plan.step_batches(first)]
    assert torch.equal(torch.cat(steps), first) and [len(s) for s in steps] == [8] * 6 + [2]
    resumed = torch.cat([torch.cat(micro) for micro in plan.step_batches(first, start=4)])
    assert torch.equal(resumed, first[32:])


@pytest.mark.req("REQ-D07")
def test_epoch_order_is_the_trainers():
    from studio.backend.pytorch.trainer.batching import epoch_order

    assert torch.equal(epoch_permutation(33, 5, 2), epoch_order(5, 2, 33))


@pytest.mark.req("REQ-D07")
@pytest.mark.parametrize("workers", [0, 2])
def test_on_disk_batches_equal_in_memory_batches(tmp_path, workers):
    root = image_folder(tmp_path / "pets", per_class=5)
    memory = load_data(DataSpec(source="images", path=str(root), options={"size": 6, "grayscale": True}))
    disk = load_data(DataSpec(source="images", path=str(root), options={"size": 6, "grayscale": True, "on_disk": True}))
    s = split_data(memory, 0.2, 0.0, 1)
    batches = DiskImageBatches(disk, s.train, 4, seed=9, workers=workers)
    for epoch in (0, 1):
        order = s.train[epoch_permutation(len(s.train), 9, epoch)]
        read = list(batches.epoch(epoch))
        assert len(read) == len(batches) == 3
        for b, (xb, yb) in enumerate(read):
            index = order[4 * b:4 * b + 4]
            assert torch.equal(yb, memory.y[index]) and torch.allclose(xb, memory.x[index], atol=1e-6)


@pytest.mark.req("REQ-D07")
def test_unshuffled_batches_keep_their_order(tmp_path):
    disk = load_data(DataSpec(source="images", path=str(image_folder(tmp_path / "pets", per_class=5)),
                              options={"size": 6, "on_disk": True}))
    s = split_data(disk, 0.4, 0.0, 0)
    val = DiskImageBatches(disk, s.val, 3, shuffle=False, workers=0)
    assert torch.equal(torch.cat([yb for _, yb in val.epoch(0)]), disk.y[s.val])
    assert torch.equal(torch.cat([yb for _, yb in val.epoch(5)]), disk.y[s.val])


# ---------------------------------------------------------------- REQ-D08 summary


@pytest.mark.req("REQ-D08")
def test_summary_of_a_table_counts_classes_and_previews_rows():
    data = builtin("iris")
    s = split_data(data, 0.2, 0.1, 0)
    summary = summarize(data, s, preview_rows=3)
    assert (summary.num_samples, summary.input_shape, summary.task, summary.num_outputs) == (150, (4,), "classification", 3)
    assert summary.class_names == ("setosa", "versicolor", "virginica") and summary.class_counts == (50, 50, 50)
    assert summary.split_sizes == {"train": 105, "val": 30, "test": 15}
    rows = summary.preview["rows"]
    assert len(rows) == 3 and rows[0][:4] == pytest.approx(data.x[0].tolist(), abs=1e-4) and rows[0][4] == "setosa"
    assert DataSummary.from_json(summary.to_json()) == summary


@pytest.mark.req("REQ-D08")
def test_summary_of_images_and_of_a_csv_file(tmp_path):
    digits = summarize(builtin("digits"))
    assert digits.class_counts == tuple(torch.bincount(builtin("digits").y).tolist())
    images = digits.preview["images"]
    assert len(images) == 8 and np.array(images).shape == (8, 1, 8, 8) and digits.preview["labels"][0] == "0"
    assert json.loads(digits.to_json())["preview"]["kind"] == "images"
    path = write(tmp_path / "t.csv", "h,w,kind\n1,2,a\n3,4,b\n5,6,a\n")
    summary = summarize(csv_data(path), split_data(csv_data(path), 0.0, 0.0, 0))
    assert summary.preview == {"kind": "table", "columns": ["h", "w", "kind"], "rows": [["1", "2", "a"], ["3", "4", "b"],
                                                                                       ["5", "6", "a"]]}
    assert summary.class_counts == (2, 1) and summary.split_sizes == {"train": 3, "val": 0, "test": 0}
    disk = load_data(DataSpec(source="images", path=str(image_folder(tmp_path / "pets")), options={"size": 4, "on_disk": True}))
    disk_summary = summarize(disk)
    assert disk_summary.num_samples == 12 and np.array(disk_summary.preview["images"]).shape == (8, 3, 4, 4)


# ---------------------------------------------------------------- REQ-D09 augmentation


@pytest.mark.req("REQ-D09")
def test_augmentation_is_seeded_and_keeps_shape_and_dtype():
    x = builtin("shapes", samples=16).x
    aug = Augmenter()
    a, b, c = aug(x, 1), aug(x, 1), aug(x, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype and not torch.equal(a, x)
    flips = Augmenter(flip=True, crop_padding=0, rotation=0.0, noise=0.0)(x, 3)
    for original, out in zip(x, flips):
        assert torch.allclose(out, original, atol=1e-5) or torch.allclose(out, original.flip(-1), atol=1e-5)
    shifted = Augmenter(flip=False, crop_padding=3, rotation=0.0, noise=0.0)(x, 4)
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.2)  # moved, not destroyed
    with pytest.raises(DataError):
        aug(torch.zeros(4, 3), 0)
    with pytest.raises(ValidationError):
        Augmenter.from_options({"rotation": 90})
    assert augmenter_from_spec(True, "image", {"augment": {"noise": 0.0}}) == Augmenter(noise=0.0)
    assert augmenter_from_spec(True, "vector") is None and augmenter_from_spec(False, "image") is None
