"""The checkpoint digest: XXH3-64 in new files, CRC-32 files from before still load and verify (REQ-S05).

Every case is a real checkpoint saved by ``save_model`` and loaded by ``load_model``; the old-format
file is the same checkpoint with its integrity record rewritten the way Studio wrote it before
(``"algorithm": "crc32"``, eight hex digits from ``zlib.crc32``), computed here independently.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
import xxhash
from torch import nn

from studio.backend.core.errors import CheckpointError
from studio.backend.pytorch.serialization import container, load_model, save_model


def build(spec: dict) -> nn.Module:
    return nn.Sequential(nn.Linear(spec["n"], 600), nn.ReLU(), nn.Linear(600, 3))


def _saved(tmp_path: Path) -> tuple[Path, nn.Module]:
    torch.manual_seed(0)
    model = build({"n": 500})  # the 300k-element weight is digested on the helper thread
    path = tmp_path / "model.safetensors"
    save_model(path, model, {"model": {"n": 500}, "task": "classification"})
    return path, model


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _record(path: Path) -> dict:
    return json.loads(_split(path.read_bytes())[0]["__metadata__"][container.INTEGRITY_KEY])


def _as_crc32_file(path: Path, out: Path) -> None:
    """Rewrite ``path`` with the CRC-32 integrity record that files written before XXH3 carry."""
    header, body = _split(path.read_bytes())
    header["__metadata__"].pop(container.INTEGRITY_KEY)
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    tensors = {name: format(zlib.crc32(body[s:e]) & 0xFFFFFFFF, "08x")
               for name, (s, e) in ((k, v["data_offsets"]) for k, v in header.items() if k != "__metadata__")}
    record = {"algorithm": "crc32", "header": format(zlib.crc32(canonical) & 0xFFFFFFFF, "08x"), "tensors": tensors}
    header["__metadata__"][container.INTEGRITY_KEY] = json.dumps(record, separators=(",", ":"))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out.write_bytes(struct.pack("<Q", len(text)) + text + body)


def _flip(path: Path, tensor: str, at: float) -> None:
    data = bytearray(path.read_bytes())
    header, _ = _split(bytes(data))
    start, end = header[tensor]["data_offsets"]
    i = 8 + struct.unpack("<Q", data[:8])[0] + start + int((end - start - 1) * at)
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_new_checkpoints_carry_an_xxh3_digest_of_every_tensor(tmp_path: Path) -> None:
    path, model = _saved(tmp_path)
    record = _record(path)
    header, body = _split(path.read_bytes())
    assert record["algorithm"] == "xxh3_64"
    for name, digest in record["tensors"].items():
        start, end = header[name]["data_offsets"]
        assert digest == format(xxhash.xxh3_64_intdigest(body[start:end]), "016x")
    assert _same(load_model(path, build)[0], model)


@pytest.mark.parametrize("tensor", ["0.weight", "0.bias", "2.weight", "2.bias"])
@pytest.mark.parametrize("at", [0.0, 0.5, 1.0])
def test_one_flipped_bit_in_any_tensor_is_refused(tmp_path: Path, tensor: str, at: float) -> None:
    path, _ = _saved(tmp_path)
    _flip(path, tensor, at)
    with pytest.raises(CheckpointError) as info:
        load_model(path, build)
    assert info.value.code == "checkpoint.corrupt" and tensor in str(info.value)


def test_a_checkpoint_written_with_crc32_still_loads_and_verifies(tmp_path: Path) -> None:
    path, model = _saved(tmp_path)
    old = tmp_path / "old.safetensors"
    _as_crc32_file(path, old)
    assert _record(old)["algorithm"] == "crc32"
    assert _same(load_model(old, build)[0], model)
    _flip(old, "2.weight", 0.5)
    with pytest.raises(CheckpointError) as info:
        load_model(old, build)
    assert info.value.code == "checkpoint.corrupt" and "2.weight" in str(info.value)


def test_an_unknown_digest_algorithm_is_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    header, body = _split(path.read_bytes())
    record = json.loads(header["__metadata__"][container.INTEGRITY_KEY])
    header["__metadata__"][container.INTEGRITY_KEY] = json.dumps({**record, "algorithm": "md4"})
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text + b" " * (-len(text) % 8))) + text + b" " * (-len(text) % 8) + body)
    with pytest.raises(CheckpointError) as info:
        load_model(path, build)
    assert info.value.code == "checkpoint.corrupt"
