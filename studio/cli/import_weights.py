"""``studio import-weights``: a plain state dict (a safetensors file from elsewhere, a weights-only
``.pt``/``.pth``) put into a Studio checkpoint of the same architecture, through the ``load`` handler's
explicit import (``torch.load(weights_only=True)``; other pickles are refused) and the ``save`` handler.
The errors that meet such a file name this command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.backend.core.errors import ValidationError
from studio.backend.core.formatting import format_bytes
from studio.backend.core.requests import LoadRequest, SaveRequest
from studio.cli.context import Context
from studio.cli.exit_codes import OK

__all__ = ["DESCRIPTION", "add_import_weights", "cmd_import_weights"]

DESCRIPTION = ("Put the weights of a plain state dict (a .safetensors file from elsewhere, or a weights-only .pt / "
               ".pth file) into a Studio checkpoint of the same architecture, and save the result as a new "
               "checkpoint.\n\nexample:\n  studio import-weights weights.pth --into model.safetensors --out "
               "imported.safetensors")


def add_import_weights(parser: argparse.ArgumentParser, ctx: Context, model: Any) -> None:
    parser.add_argument("weights", metavar="WEIGHTS",
                        help="A plain state dict: a .safetensors file not saved by Studio, or a .pt / .pth file "
                        "of weights only (read with torch.load(weights_only=True); other pickles are refused).")
    parser.add_argument("--into", "--model", dest="into", required=True, metavar="MODEL.safetensors",
                        help="A Studio checkpoint of the same architecture: its model, data, classes and "
                        "preprocessing are kept, its weights replaced.")
    parser.add_argument("--out", required=True, metavar="PATH.safetensors", help="The new Studio checkpoint.")
    parser.add_argument("--json", action="store_true", help="The result as one JSON object on stdout.")


def cmd_import_weights(args: argparse.Namespace, ctx: Context, model: Any) -> int:
    from studio.cli.commands import CHECKPOINT_SUFFIX, _load, check_output

    out = check_output(args.out, (CHECKPOINT_SUFFIX,))
    weights = Path(args.weights).expanduser()
    if not weights.is_file():
        raise ValidationError(f"There is no weights file at {args.weights}.", code="checkpoint.not_found",
                              field="weights", value=args.weights)
    target = _load(args.into, ctx)
    imported = ctx.handler("load")(LoadRequest(path=str(weights.absolute()), import_state_dict=True,
                                               into=target.model))
    info = ctx.handler("save")(SaveRequest(model=imported.model, path=str(out)))
    if args.json:
        ctx.emit_json(info)
    else:
        ctx.out(f"Imported the weights of {weights.name} into {Path(args.into).name}'s model; saved to {info.path} "
                f"({format_bytes(info.size_bytes)}).")
    return OK
