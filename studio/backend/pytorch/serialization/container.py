"""The safetensors container: writing, strict header validation and integrity checks.

The file layout is plain safetensors, readable by ``safetensors.safe_open``/``load_file``::

    [8-byte little-endian header length n][n bytes of JSON header, space padded][tensor bytes]

Studio adds one metadata entry, ``studio.integrity``: a 64-bit XXH3 digest of every tensor's
bytes and of the rest of the header (canonical JSON). A damaged byte anywhere in a file is then
detected (a random change escapes a 64-bit digest with odds of 2**-64), which the safetensors
format alone does not do for tensor data (``torch.save``'s zip records carry CRC-32 too, so both
formats pay for a checksum). XXH3 runs at memory speed (about 4x zlib's CRC-32 here), so checking
a file costs about what reading it does. Files written before it carry CRC-32 records
(``"algorithm": "crc32"``); they are read and verified as before. Neither digest is a signature:
they catch damage, not deliberate tampering (nothing in a checkpoint is executable anyway).

Writing is done here rather than by ``safetensors.torch.save_file`` so the checksums are
computed on a second thread *while* the tensor bytes are written, straight from the tensors'
memory with no intermediate copy; the checksum entry has a fixed width and is filled in at
the end. The result is byte-for-byte a valid safetensors file (the tests read it back with the
library). :func:`read_header` validates everything the library would, and more, before the
library is allowed near a file.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import xxhash

from studio.backend.core.errors import CheckpointError, ValidationError

__all__ = ["ALGORITHM", "INTEGRITY_KEY", "MAX_HEADER_BYTES", "TensorEntry", "Header", "write_file", "read_header",
           "verify_header", "verify_tensors", "sniff_foreign", "st_dtype"]

INTEGRITY_KEY = "studio.integrity"
MAX_HEADER_BYTES = 100_000_000  # the limit safetensors itself enforces
_INLINE_DIGEST_BYTES = 1 << 20  # smaller tensors are digested inline; larger ones on the helper thread
ALGORITHM = "xxh3_64"  # what new files carry
# algorithm -> (digest as an int, hex width); "crc32" is what files written before XXH3 carry
_DIGESTS: dict[str, tuple[Callable[[Any], int], int]] = {
    "xxh3_64": (xxhash.xxh3_64_intdigest, 16),
    "crc32": (lambda data: zlib.crc32(data) & 0xFFFFFFFF, 8),
}

_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.complex64: "C64",
}
for _name, _code in (("uint64", "U64"), ("uint32", "U32"), ("uint16", "U16"),
                     ("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _name):
        _DTYPES[getattr(torch, _name)] = _code
_SIZES = {code: dtype.itemsize for dtype, code in _DTYPES.items()}


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets relative to the start of the data section
    end: int


@dataclass(frozen=True)
class Header:
    path: Path
    file_size: int
    data_start: int
    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]
    raw: dict[str, Any]


def st_dtype(dtype: torch.dtype, name: str = "") -> str:
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValidationError(f"The tensor {name!r} has dtype {dtype}, which a checkpoint cannot hold; "
                              f"supported: {', '.join(str(d) for d in _DTYPES)}.",
                              code="checkpoint.bad_dtype", field=name, value=str(dtype)) from None


def _bytes_of(name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, memoryview]:
    if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided or tensor.is_quantized:
        raise ValidationError(f"{name!r} is not a dense tensor and cannot be saved.", field=name)
    if tensor.is_meta:
        raise ValidationError(f"The tensor {name!r} has no data (meta device) and cannot be saved.", field=name)
    st_dtype(tensor.dtype, name)
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.resolve_conj().resolve_neg().contiguous()
    if t.numel() == 0:
        return t, memoryview(b"")
    return t, memoryview(t.reshape(-1).view(torch.uint8).numpy())


def _canonical(header: Mapping[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _hex(algorithm: str, value: int) -> str:
    return format(value, f"0{_DIGESTS[algorithm][1]}x")


def _digest(algorithm: str, data: memoryview | bytes) -> str:
    return _hex(algorithm, _DIGESTS[algorithm][0](data))


def _encode_header(header: dict[str, Any], record: dict[str, Any]) -> bytes:
    meta = {**header["__metadata__"], INTEGRITY_KEY: json.dumps(record, separators=(",", ":"))}
    text = json.dumps({**header, "__metadata__": meta}, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return text + b" " * (-len(text) % 8)


def _write_all(f: Any, data: memoryview | bytes) -> None:
    view = memoryview(data)
    while view.nbytes:
        view = view[f.write(view):]


def write_file(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write ``tensors`` and string ``metadata`` to the existing (empty) file ``path``."""
    if INTEGRITY_KEY in metadata:
        raise ValidationError(f"The metadata key {INTEGRITY_KEY!r} is reserved.", field=INTEGRITY_KEY)
    prepared = {name: _bytes_of(name, t) for name, t in tensors.items()}
    # like safetensors: largest element size first, then by name, so every tensor stays aligned
    order = sorted(prepared, key=lambda n: (-prepared[n][0].element_size(), n))
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name in order:
        t, data = prepared[name]
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    digest, width = _DIGESTS[ALGORITHM]
    record = {"algorithm": ALGORITHM, "header": _digest(ALGORITHM, _canonical(header)),
              "tensors": dict.fromkeys(order, "0" * width)}
    placeholder = _encode_header(header, record)
    sums: dict[str, Future[int] | int] = {}
    with open(path, "r+b", buffering=0) as f, ThreadPoolExecutor(1, thread_name_prefix="studio-digest") as pool:
        _write_all(f, struct.pack("<Q", len(placeholder)) + placeholder)
        for name in order:
            data = prepared[name][1]
            sums[name] = pool.submit(digest, data) if data.nbytes > _INLINE_DIGEST_BYTES else digest(data)
            _write_all(f, data)
        record["tensors"] = {n: _hex(ALGORITHM, c.result() if isinstance(c, Future) else c) for n, c in sums.items()}
        final = _encode_header(header, record)
        assert len(final) == len(placeholder), "the integrity record must keep its width"
        f.seek(8)
        _write_all(f, final)


# -- reading ------------------------------------------------------------------------------------

def _corrupt(path: Path, why: str, code: str = "checkpoint.corrupt") -> CheckpointError:
    return CheckpointError(f"{path.name!r} is not a valid checkpoint: {why}.", code=code, field="path",
                           value=str(path), hint="The file may be truncated or damaged; use another copy.")


def sniff_foreign(prefix: bytes, file_size: int) -> str | None:
    """Name the kind of a pickle-based file from its first 9 bytes, or ``None``.

    A safetensors prefix (a header length that fits the file, then ``{``) is never foreign, even
    when its length bytes happen to look like a pickle opcode (a 640-byte header starts ``80 02``).
    """
    if len(prefix) >= 9 and prefix[8:9] == b"{" and struct.unpack("<Q", prefix[:8])[0] <= file_size - 8:
        return None
    if prefix.startswith(b"PK\x03\x04"):
        return "a zip archive such as torch.save writes (it contains a pickle)"
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "a Python pickle"
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _entry(path: Path, name: str, spec: Any) -> TensorEntry:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise _corrupt(path, f"the entry for {name!r} is malformed")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    ints = (isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in [*shape, *offsets]))
    if dtype not in _SIZES or not ints or offsets[0] > offsets[1]:
        raise _corrupt(path, f"the entry for {name!r} has a bad dtype, shape or offsets")
    if offsets[1] - offsets[0] != math.prod(shape) * _SIZES[dtype]:
        raise _corrupt(path, f"the size of {name!r} does not match its dtype and shape")
    return TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])


def read_header(path: Path) -> Header:
    """Read and validate the header of ``path`` without reading any tensor data."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _corrupt(path, f"it is only {size} bytes long")
        (n,) = struct.unpack("<Q", prefix)
        if n > MAX_HEADER_BYTES:
            raise _corrupt(path, f"its header claims {n} bytes, more than the {MAX_HEADER_BYTES} allowed")
        if n < 2 or n > size - 8:
            raise _corrupt(path, f"its header length ({n} bytes) does not fit the file ({size} bytes)")
        raw = f.read(n)
    try:
        if raw[:1] != b"{":
            raise ValueError("the header does not start with '{'")
        parsed = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(path, f"its header does not parse ({exc})") from exc
    if not isinstance(parsed, dict):
        raise _corrupt(path, "its header is not a JSON object")
    metadata = parsed.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "its metadata is not a map of texts")
    entries = {name: _entry(path, name, spec) for name, spec in parsed.items() if name != "__metadata__"}
    position = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != position:
            raise _corrupt(path, "its tensors overlap or leave gaps")
        position = entry.end
    if position != size - 8 - n:
        raise _corrupt(path, f"its tensors need {position} bytes but the file holds {size - 8 - n}")
    return Header(Path(path), size, 8 + n, dict(metadata), entries, parsed)


def verify_header(header: Header) -> dict[str, Any]:
    """Check the header checksum; returns the integrity record (with per-tensor digests).

    Both record kinds are accepted: XXH3-64 (written now) and CRC-32 (files written before).
    """
    text = header.metadata.get(INTEGRITY_KEY)
    try:
        record = json.loads(text) if text is not None else None
        ok = (isinstance(record, dict) and record.get("algorithm") in _DIGESTS
              and isinstance(record.get("header"), str)
              and isinstance(record.get("tensors"), dict) and set(record["tensors"]) == set(header.tensors))
    except ValueError:
        ok = False
    if not ok:
        raise _corrupt(header.path, "its integrity record is missing or damaged")
    rest = {**header.raw, "__metadata__": {k: v for k, v in header.metadata.items() if k != INTEGRITY_KEY}}
    if _digest(record["algorithm"], _canonical(rest)) != record["header"]:
        raise _corrupt(header.path, "its header fails the checksum")
    return record


def verify_tensors(header: Header, record: Mapping[str, Any]) -> None:
    """Check every tensor's digest against ``record`` (reads the data through a memory map)."""
    expected, algorithm = record["tensors"], record["algorithm"]
    if header.data_start == header.file_size:
        return
    with open(header.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        with memoryview(mm) as view:
            for name, entry in header.tensors.items():
                start = header.data_start + entry.begin
                if _digest(algorithm, view[start:header.data_start + entry.end]) != expected[name]:
                    raise _corrupt(header.path, f"the data of tensor {name!r} fails its checksum")
