"""Weight initialisation schemes (REQ-M13).

``default`` keeps PyTorch's own initialisation; ``kaiming`` (He normal, fan-in, for ReLU-like
activations) and ``xavier`` (Glorot uniform) re-draw every weight matrix and convolution
kernel - including recurrent and attention weights - and zero their biases. Normalisation
layers keep weight 1 and bias 0. All draws come from torch's global generator, so the same
``torch.manual_seed`` gives the same weights.
"""

from __future__ import annotations

from torch import nn

from studio.backend.core.errors import ModelError

__all__ = ["INIT_SCHEMES", "check_init", "apply_init", "init_weights"]

INIT_SCHEMES = ("default", "kaiming", "xavier")

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def check_init(scheme: str) -> str:
    if scheme not in INIT_SCHEMES:
        raise ModelError(
            f"Unknown initialisation {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}.",
            code="model.bad_hparam",
            field="model.init",
            value=scheme if isinstance(scheme, str) else repr(scheme),
        )
    return scheme


def apply_init(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model`` in place with ``scheme`` and return it."""
    check_init(scheme)
    if scheme == "default":
        return model
    for module in model.modules():
        if isinstance(module, _NORMS):
            continue
        for name, param in module.named_parameters(recurse=False):
            if "weight" in name and param.dim() >= 2:
                if scheme == "kaiming":
                    nn.init.kaiming_normal_(param, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(param)
            elif "bias" in name:
                nn.init.zeros_(param)
    return model


init_weights = apply_init  # the name used in specs/PT-MODELS-001.md
