"""The network as an exported file runs it: the training preprocessing in front, so the input is the
values as they are in the user's files, and optionally probabilities behind (issue 22).

:class:`RawInputModel` computes exactly what ``predict`` computes from the inputs its readers return
(``Preprocessing.apply``, the network, ``inverse_target`` for regression), with the statistics as
buffers so TorchScript and ONNX carry them as constants. Images may also come as 0..255 pixel values
(``pixel_range="0..255"``), which are scaled to the 0..1 that Studio's image reader returns.
"""

from __future__ import annotations

import torch
from torch import nn

from studio.backend.core.errors import ValidationError
from studio.backend.pytorch.data.preprocessing import Preprocessing

__all__ = ["PIXEL_RANGES", "RawInputModel"]

PIXEL_RANGES = {"0..1": 1.0, "0..255": 1.0 / 255.0}


def _stats(values: tuple[float, ...], shape: tuple[int, ...], fill: float) -> torch.Tensor:
    if not values:
        return torch.full((1,), fill, dtype=torch.float32)
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


class RawInputModel(nn.Module):
    """``net`` with ``prep`` applied to its input; outputs logits, or probabilities with ``probabilities``."""

    def __init__(self, net: nn.Module, prep: Preprocessing, task: str, *, pixel_range: str = "0..1",
                 probabilities: bool = False) -> None:
        super().__init__()
        if pixel_range not in PIXEL_RANGES:
            raise ValidationError(f"pixel_range must be one of {', '.join(PIXEL_RANGES)}, not {pixel_range!r}.",
                                  field="pixel_range", value=pixel_range)
        if pixel_range != "0..1" and prep.input_kind != "image":
            raise ValidationError(f"pixel_range {pixel_range} is for image models; this one takes "
                                  f"{prep.input_kind} inputs.", field="pixel_range", value=pixel_range)
        self.net = net
        shape = (len(prep.x_mean), 1, 1) if prep.input_kind == "image" else (len(prep.x_mean),)
        self.register_buffer("x_mean", _stats(prep.x_mean, shape, 0.0))
        self.register_buffer("x_std", _stats(prep.x_std, shape, 1.0))
        self.register_buffer("y_mean", _stats(prep.y_mean, (len(prep.y_mean),), 0.0))
        self.register_buffer("y_std", _stats(prep.y_std, (len(prep.y_std),), 1.0))
        self.scale = PIXEL_RANGES[pixel_range]
        self.task = task
        self.probabilities = probabilities and task in ("classification", "binary", "multilabel")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.scale != 1.0:
            x = x * self.scale
        out = self.net((x - self.x_mean) / self.x_std)
        if self.task == "regression":
            return out.to(torch.float32) * self.y_std + self.y_mean
        if self.probabilities:
            return torch.softmax(out, dim=1) if self.task == "classification" else torch.sigmoid(out)
        return out
