"""Image augmentation on whole batches (REQ-D09): flip, crop with padding, small rotation, noise.

Applied to training batches only (the batch iterators never pass it to validation or test
batches). Every random draw comes from a generator seeded by ``(seed, epoch, batch)``, so a
batch is augmented the same way on every run and after a resume. Crop-with-padding is a random
shift of up to ``crop_padding`` pixels filled with zeros; it and the rotation are one affine
resampling of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from studio.backend.core.errors import DataError, ValidationError
from studio.backend.pytorch.data.seeding import derive_seed

__all__ = ["Augmenter", "augmenter_from_spec"]


@dataclass(frozen=True)
class Augmenter:
    flip: bool = True
    crop_padding: int = 2
    rotation: float = 10.0  # degrees, drawn uniformly from [-rotation, rotation]
    noise: float = 0.02  # standard deviation of added Gaussian noise

    def __post_init__(self) -> None:
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ValidationError(f"crop_padding must be a whole number of pixels >= 0, not {self.crop_padding!r}.",
                                  field="augment.crop_padding", value=self.crop_padding)
        if not 0.0 <= float(self.rotation) <= 45.0:
            raise ValidationError(f"rotation must be from 0 to 45 degrees, not {self.rotation!r}.",
                                  field="augment.rotation", value=self.rotation)
        if not 0.0 <= float(self.noise) <= 1.0:
            raise ValidationError(f"noise must be from 0 to 1, not {self.noise!r}.", field="augment.noise",
                                  value=self.noise)

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> Augmenter:
        options = dict(options or {})
        unknown = sorted(set(options) - {"flip", "crop_padding", "rotation", "noise"})
        if unknown:
            raise ValidationError(f"Unknown augmentation setting(s) {', '.join(map(repr, unknown))}; use flip, "
                                  "crop_padding, rotation, noise.", field=f"augment.{unknown[0]}", value=unknown)
        return cls(**options)

    def seeded(self, seed: int) -> Callable[[torch.Tensor, int, int, int], torch.Tensor]:
        """This augmenter as the trainer calls it, ``augment(x, epoch, step, part)``: the images of
        micro-batch ``part`` of step ``step`` of ``epoch`` (CPU tensors), seeded from ``seed``, so a
        run and its pause/resume or checkpoint resume augment every batch the same way."""
        def augment(x: torch.Tensor, epoch: int, step: int, part: int) -> torch.Tensor:
            return self(x, derive_seed(seed, epoch, step, part))

        return augment

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """Augment an image batch ``(N, C, H, W)`` deterministically for ``seed``."""
        if x.dim() != 4:
            raise DataError(f"Augmentation works on image batches (N, C, H, W), not {tuple(x.shape)}; turn it off "
                            "for tabular or sequence data.", code="data.bad_shape", field="augment")
        generator = torch.Generator().manual_seed(int(seed))
        n, _, h, w = x.shape
        out = x
        if self.flip:
            mirrored = torch.rand(n, generator=generator) < 0.5
            out = torch.where(mirrored[:, None, None, None], out.flip(-1), out)
        if self.rotation > 0 or self.crop_padding > 0:
            angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(self.rotation)
            p = self.crop_padding
            shift = torch.randint(-p, p + 1, (n, 2), generator=generator).to(torch.float32)
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack([
                torch.stack([cos, -sin * h / w, shift[:, 0] * 2 / w], dim=1),
                torch.stack([sin * w / h, cos, shift[:, 1] * 2 / h], dim=1),
            ], dim=1).to(out.dtype)
            grid = F.affine_grid(theta, list(out.shape), align_corners=False)
            out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.noise > 0:
            out = out + torch.randn(out.shape, generator=generator, dtype=out.dtype) * self.noise
        return out


def augmenter_from_spec(augment: bool, input_kind: str, options: dict[str, Any] | None = None) -> Augmenter | None:
    """The augmenter a data spec asks for (``DataSpec.augment`` and ``options["augment"]``), or None.

    Only image data are augmented; for other input kinds this returns None.
    """
    if not augment or input_kind != "image":
        return None
    settings = (options or {}).get("augment") or {}
    if not isinstance(settings, dict):
        raise ValidationError(f"Option 'augment' must be an object of settings, not {settings!r}.",
                              field="options.augment", value=repr(settings))
    return Augmenter.from_options(settings)
