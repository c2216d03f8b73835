"""What an exported file says about itself, and the code that loads it (issue 22).

:func:`export_metadata` is written into the file: ONNX ``metadata_props`` (each entry a string; JSON
where the value is structured) and a TorchScript ``_extra_files`` entry ``studio.json`` holding the
same document. :func:`loader_snippet` is Python that runs as printed: it loads the file, feeds it an
input of the right shape and kind (random values standing in for the user's), and prints the result.
"""

from __future__ import annotations

import json
from typing import Any

from studio import __version__
from studio.backend.pytorch.data.preprocessing import Preprocessing

__all__ = ["EXTRA_FILE", "export_metadata", "onnx_metadata_props", "loader_snippet", "input_text"]

EXTRA_FILE = "studio.json"
_AXES = {"image": ("channels", "height", "width"), "sequence": ("steps", "channels"), "vector": ("features",)}
_LAYOUTS = {"image": "NCHW", "sequence": "NLC", "vector": "NC"}


def _values(prep: Preprocessing, in_graph: bool, pixel_range: str) -> str:
    if not in_graph:
        return ("normalised: (x - mean) / std with the training statistics in 'preprocessing' (x_mean, x_std), "
                "applied to the values Studio reads from the files")
    if prep.input_kind == "image":
        colour = "RGB" if prep.input_shape[0] == 3 else "grayscale"
        return (f"raw pixels {pixel_range}, {colour}, resized to {prep.input_shape[1]}x{prep.input_shape[2]} "
                "(bilinear), as Studio's image reader returns them; the training normalisation is in the graph")
    if prep.encoding.get("columns"):
        return ("raw CSV feature values in the order of 'features' (text columns one-hot as 'preprocessing."
                "encoding' says); the training normalisation is in the graph")
    return "raw feature values as in the data files; the training normalisation is in the graph"


def export_metadata(prep: Preprocessing, task: str, class_names: tuple[str, ...], *, in_graph: bool,
                    probabilities: bool, pixel_range: str) -> dict[str, Any]:
    """The document written into an export: version, task, classes, input layout and preprocessing."""
    kind = prep.input_kind
    if task == "regression":
        output = "values in the target's units" if in_graph else "values scaled by the training y_mean / y_std"
    elif probabilities and in_graph:
        output = "probabilities (softmax over classes)" if task == "classification" else "probabilities (sigmoid)"
    else:
        output = "logits (the largest is the predicted class)" if task == "classification" else "logits"
    features = list(prep.encoding.get("features", ()))
    return {
        "studio_version": __version__,
        "task": task,
        "class_names": list(class_names),
        "input": {"name": "input", "layout": _LAYOUTS.get(kind, "N..."), "axes": ["batch", *_AXES.get(kind, ())],
                  "shape": ["batch", *prep.input_shape], "dtype": "float32", "kind": kind,
                  "values": _values(prep, in_graph, pixel_range), **({"features": features} if features else {})},
        "output": {"name": "output", "values": output},
        "preprocessing_in_graph": in_graph,
        "pixel_range": pixel_range if kind == "image" else None,
        "preprocessing": prep.to_dict(),
    }


def onnx_metadata_props(meta: dict[str, Any]) -> dict[str, str]:
    """ONNX ``metadata_props``: one string per key, JSON for structured values, the whole under ``studio``."""
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    return {"studio": json.dumps(meta), "studio.version": meta["studio_version"],
            "studio.class_names": text["class_names"], "studio.preprocessing": text["preprocessing"],
            "studio.input_layout": meta["input"]["layout"], "studio.input": text["input"],
            "studio.output": text["output"], "studio.task": meta["task"]}


def input_text(meta: dict[str, Any]) -> str:
    shape = ", ".join(map(str, meta["input"]["shape"]))
    return f"float32 ({shape}), {meta['input']['values']}"


def _example(meta: dict[str, Any], module: str) -> str:
    dims = ", ".join(map(str, [2, *meta["input"]["shape"][1:]]))
    scale = " * 255" if meta.get("pixel_range") == "0..255" and meta["preprocessing_in_graph"] else ""
    if module == "np":
        return f"np.random.rand({dims}).astype(np.float32){scale}"
    return f"torch.rand({dims}){scale}"


def _result(meta: dict[str, Any], outputs: str, argmax: str) -> str:
    if meta["task"] == "classification" and meta["class_names"]:
        return f"print([classes[i] for i in {outputs}.{argmax}])"
    return f"print({outputs})"


def loader_snippet(fmt: str, path: str, meta: dict[str, Any]) -> str:
    """Python that loads ``path`` and runs it once; correct as printed."""
    note = f"# inputs: {input_text(meta)}"
    if fmt == "onnx":
        lines = ["import json", "", "import numpy as np", "import onnxruntime as ort", "",
                 f"session = ort.InferenceSession({path!r})",
                 "info = session.get_modelmeta().custom_metadata_map  # class names, preprocessing, input layout",
                 "classes = json.loads(info['studio.class_names'])",
                 f"inputs = {_example(meta, 'np')}  # replace with your data",
                 note, "outputs = session.run(None, {'input': inputs})[0]",
                 _result(meta, "outputs", "argmax(axis=1)")]
    else:
        lines = ["import json", "", "import torch", "", f"extra = {{{EXTRA_FILE!r}: ''}}",
                 f"model = torch.jit.load({path!r}, _extra_files=extra)",
                 f"info = json.loads(extra[{EXTRA_FILE!r}])  # class names, preprocessing, input layout",
                 "classes = info['class_names']",
                 f"inputs = {_example(meta, 'torch')}  # replace with your data",
                 note, "with torch.no_grad():", "    outputs = model(inputs)",
                 _result(meta, "outputs", "argmax(dim=1).tolist()")]
    return "\n".join(lines) + "\n"
