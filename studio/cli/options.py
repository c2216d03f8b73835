"""Command-line flags generated from the contracts and from a model's hyperparameter schema.

Nothing here keeps a second list of settings: the training, runtime and distillation flags are
the fields of :class:`TrainConfig`, :class:`RuntimeConfig` and :class:`DistillConfig` (a field
``batch_size`` is the flag ``--batch-size``; :data:`FIELD_HELP` only adds words), and the model
flags are the model's schema as the ``catalogue`` handler describes it (:class:`Param`, whose
``parse_text`` reads the command-line text). Given flags become partial settings that
``merge_config`` lays over a project or the defaults (REQ-H12); flags not given are absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from studio.backend.core.contract import Contract
from studio.backend.core.errors import StudioError, ValidationError
from studio.backend.core.requests import DataSpec

__all__ = [
    "FIELD_HELP",
    "ModelFlags",
    "add_contract_flags",
    "add_data_flags",
    "add_model_flags",
    "flag_name",
    "given",
    "data_spec",
    "parse_data",
]

# Words for the flags generated from contract fields ("group.field"); a field without words
# still gets a flag.
FIELD_HELP: dict[str, str] = {
    "config.epochs": "Passes over the training data.",
    "config.batch_size": "Samples per optimisation step (per process under torchrun).",
    "config.optimizer": "The optimiser.",
    "config.lr": "Learning rate.",
    "config.weight_decay": "L2 penalty on the weights (decoupled for adamw).",
    "config.momentum": "Momentum of sgd and rmsprop.",
    "config.nesterov": "Nesterov momentum for sgd.",
    "config.schedule": "How the learning rate changes over the run.",
    "config.schedule_options": "Settings of the schedule as a JSON object, e.g. '{\"step_size\": 5}'.",
    "config.loss": "Loss function; 'none' uses the task's default.",
    "config.label_smoothing": "Label smoothing for classification (0 turns it off).",
    "config.class_weights": "Weight of each class in the loss, comma separated.",
    "config.clip_norm": "Clip the gradient norm to this value; 'none' turns it off.",
    "config.clip_value": "Clip each gradient value to this range; 'none' turns it off.",
    "config.accumulate": "Micro-batches accumulated per optimisation step.",
    "config.precision": "Numeric precision of the forward pass.",
    "config.early_stopping": "Early stopping as a JSON object (monitor, mode, patience, min_delta, restore_best); "
                             "'none' turns it off.",
    "config.monitor": "The metric that picks the best epoch, e.g. val_loss or val_accuracy.",
    "config.monitor_mode": "Whether lower (min) or higher (max) values of the monitor are better.",
    "runtime.device": "Where to train: auto, cpu, cuda, cuda:1, mps.",
    "runtime.seed": "Seed of weight initialisation and data order (same seed, same result on CPU).",
    "runtime.deterministic": "Use deterministic kernels.",
    "runtime.threads": "CPU threads for torch; 'none' keeps torch's choice.",
    "distill.method": "Distillation method.",
    "distill.temperature": "Softening temperature of the teacher's and student's outputs.",
    "distill.hard_weight": "Weight of the loss against the true labels.",
    "distill.soft_weight": "Weight of the loss against the teacher's outputs.",
    "distill.feature_weight": "Weight of the feature-matching loss (0 turns it off).",
    "distill.feature_pairs": "Pairs of teacher and student layers to match, as JSON, e.g. '[[\"layer2\", \"fc1\"]]'.",
    "distill.schedules": "Schedules of the weights or the temperature, as a JSON object.",
    "distill.cache_teacher": "Compute the teacher's outputs once and reuse them.",
    "distill.baseline": "Also train the student without the teacher, for comparison.",
    "distill.teacher_weights": "Weight of each teacher of an ensemble, comma separated.",
}

FIXED_CHOICES = {"config.monitor_mode": ("min", "max")}


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- values -------------------------------------------------------------------------------------------

def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected JSON ({exc.msg} at column {exc.colno}), not {text!r}") from None


def _json_object(text: str) -> dict[str, Any]:
    value = _json_value(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, not {text!r}")
    return value


def _list_of(kind: type) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(p) for p in text.replace(" ", "").split(",") if p]
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, not {text!r}") from None

    return parse


def _number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None

    return parse


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def wrapped(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null", "off") else parse(text)

    return wrapped


def _converter(hint: Any) -> tuple[Callable[[str], Any], str, bool]:
    """(parse, metavar, is_bool) for a contract field's type hint."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    origin = typing.get_origin(base)
    inner = typing.get_args(base)
    parse: Callable[[str], Any]
    if base is bool:
        parse, metavar = _bool, "{true,false}"
    elif base is int:
        parse, metavar = _number(int), "N"
    elif base is float:
        parse, metavar = _number(float), "X"
    elif base is str:
        parse, metavar = str, "TEXT"
    elif base is dict or origin is dict:
        parse, metavar = _json_object, "JSON"
    elif origin is tuple and len(inner) == 2 and inner[1] is Ellipsis and inner[0] in (int, float):
        parse, metavar = _list_of(inner[0]), "X,X,..."
    else:
        parse, metavar = _json_value, "JSON"
    return (_optional(parse) if optional else parse), metavar, base is bool


def add_contract_flags(parser: argparse._ActionsContainer, contract: type[Contract], group: str, *,
                       skip: Iterable[str] = (), choices: Mapping[str, Sequence[str]] | None = None,
                       rename: Mapping[str, str] | None = None) -> None:
    """One flag per field of ``contract``; the value lands under ``dest="group.field"`` only when given."""
    hints = typing.get_type_hints(contract)
    defaults = contract()
    for f in dataclasses.fields(contract):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        key = f"{group}.{f.name}"
        parse, metavar, is_bool = _converter(hints[f.name])
        default = getattr(defaults, f.name)
        shown = _shown(default)
        text = f"{FIELD_HELP.get(key, f.name.replace('_', ' ').capitalize() + '.')} Default: {shown}."
        kwargs: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS, "help": text}
        options = (choices or {}).get(key) or FIXED_CHOICES.get(key)
        if options:
            kwargs["choices"] = list(options)
            kwargs["metavar"] = "{" + ",".join(options) + "}"
        elif is_bool:
            kwargs.update(nargs="?", const=True, metavar="true|false")
        else:
            kwargs["metavar"] = metavar
        parser.add_argument(flag_name((rename or {}).get(f.name, f.name)), type=parse, **kwargs)


def _shown(value: Any) -> str:
    """A default as a person would type it: ``true``, ``none``, ``{}``, ``1,2``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


def given(args: argparse.Namespace, group: str) -> dict[str, Any]:
    """The fields of ``group`` the command line set, as a partial dict for ``merge_config``."""
    prefix = group + "."
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


# -- data ---------------------------------------------------------------------------------------------

_SUFFIX_SOURCE = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".npy": "numpy", ".npz": "numpy"}


def parse_data(text: str, builtin: Sequence[str] = ()) -> dict[str, Any]:
    """``digits`` / ``builtin:digits`` / ``csv:PATH`` / ``images:DIR`` / ``numpy:PATH`` / a path -> DataSpec fields."""
    import os

    source, sep, rest = text.partition(":")
    if sep and source in ("builtin", "csv", "images", "numpy") and rest:
        if source == "builtin":
            return {"source": "builtin", "name": rest, "path": None}
        return {"source": source, "name": _stem(rest), "path": os.path.abspath(os.path.expanduser(rest))}
    if text in builtin:
        return {"source": "builtin", "name": text, "path": None}
    path = os.path.expanduser(text)
    if os.path.isdir(path):
        return {"source": "images", "name": _stem(path), "path": os.path.abspath(path)}
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _SUFFIX_SOURCE:
        return {"source": _SUFFIX_SOURCE[suffix], "name": _stem(path), "path": os.path.abspath(path)}
    if os.path.exists(path):
        raise ValidationError(f"Cannot tell what kind of data {text!r} is from its name.", code="usage.bad_data",
                              field="data", value=text,
                              hint="Prefix it with its kind: csv:PATH, images:FOLDER or numpy:PATH.")
    import difflib

    close = difflib.get_close_matches(text, list(builtin), n=1, cutoff=0.5)
    raise ValidationError(
        f"{text!r} is neither a built-in dataset nor an existing file or folder.", code="usage.bad_data",
        field="data", value=text,
        hint=(f"Did you mean {close[0]!r}? " if close else "") + f"Built-in datasets: {', '.join(builtin)}.",
    )


def _stem(path: str) -> str:
    import os

    name = os.path.basename(os.path.normpath(path))
    return os.path.splitext(name)[0] or name


def _data_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def add_data_flags(parser: argparse.ArgumentParser, datasets: Sequence[str], *, required: bool = False) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", dest="data.spec", default=argparse.SUPPRESS, metavar="DATA", required=required,
                       help="A built-in dataset (" + ", ".join(datasets) + "), or a CSV file, an image folder "
                       "(one sub-folder per class) or a NumPy file; prefix with csv:, images:, numpy: or builtin: "
                       "to say which.")
    group.add_argument("--target", dest="data.target", default=argparse.SUPPRESS, metavar="COLUMN",
                       help="The column of a CSV file to predict (default: the last one).")
    group.add_argument("--val-fraction", dest="data.val_fraction", type=_number(float), default=argparse.SUPPRESS,
                       metavar="X", help="Share of the data held out for validation. Default: 0.2.")
    group.add_argument("--test-fraction", dest="data.test_fraction", type=_number(float), default=argparse.SUPPRESS,
                       metavar="X", help="Share of the data held out for a final test. Default: 0.")
    group.add_argument("--data-seed", dest="data.seed", type=_number(int), default=argparse.SUPPRESS, metavar="N",
                       help="Seed of the split (and of generated built-in data). Default: 0.")
    group.add_argument("--augment", dest="data.augment", type=_bool, nargs="?", const=True,
                       default=argparse.SUPPRESS, metavar="true|false", help="Augment images while training.")
    group.add_argument("--data-option", dest="data_options", type=_data_option, action="append", default=[],
                       metavar="KEY=VALUE", help="A source-specific setting, e.g. size=28 or missing=drop "
                       "(repeatable; VALUE may be JSON).")


def data_spec(args: argparse.Namespace, base: DataSpec, datasets: Sequence[str]) -> DataSpec:
    """``base`` (a project's data or the defaults) with the data flags laid over it."""
    from studio.backend.core.config_merge import merge_config

    partial = given(args, "data")
    spec_text = partial.pop("spec", None)
    if spec_text is not None:
        where = parse_data(spec_text, datasets)
        if (where["source"], where["name"], where["path"]) != (base.source, base.name, base.path):
            partial = {**where, "options": {}, "target": None, **partial}
    options = dict(args.data_options or ())
    if options:
        partial["options"] = {**(partial.get("options", base.options)), **options}
    return merge_config(base, partial)


# -- models -------------------------------------------------------------------------------------------

class ModelFlags:
    """The flags of one model's hyperparameters, from the schema the ``catalogue`` handler returns."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        from studio.backend.pytorch.models.schema import Param  # torch-free module; JSON -> Param

        self.name = str(info["name"])
        self.info = info
        self.params = [Param.from_dict(p) for p in info.get("schema", ())]
        self.flags: dict[str, str] = {}
        self.group: Any = None

    def make_group(self, parser: argparse.ArgumentParser) -> None:
        """Place the group of hyperparameter flags (filled by :meth:`add_to` once every other flag exists)."""
        title = f"hyperparameters of {self.name} (from its schema; they override --preset)"
        self.group = parser.add_argument_group(title, str(self.info.get("description", "")) or None)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add one flag per hyperparameter (``--model-NAME`` where ``--NAME`` is already a flag)."""
        taken = set(parser._option_string_actions)
        if getattr(self, "group", None) is None:
            self.make_group(parser)
        group = self.group
        for p in self.params:
            flag = flag_name(p.name)
            self.flags[p.name] = flag if flag not in taken else flag_name("model_" + p.name)
            kwargs: dict[str, Any] = {"dest": f"hparam.{p.name}", "default": argparse.SUPPRESS,
                                      "type": _param_parser(p)}
            default = p.to_dict()["default"]
            if isinstance(default, list):
                shown = ",".join(map(str, default)) or "(none)"
            else:
                shown = str(default).lower() if isinstance(default, bool) else str(default)
            kwargs["help"] = f"{p.help} Allowed: {p.allowed()}. Default: {shown}."
            if p.type == "bool":
                kwargs.update(nargs="?", const="true", metavar="true|false")
            elif p.type == "choice":
                kwargs["metavar"] = "{" + ",".join(p.choices) + "}"
            elif p.type == "int_list":
                kwargs["metavar"] = "N,N,..."
            else:
                kwargs["metavar"] = "N" if p.type == "int" else "X"
            group.add_argument(self.flags[p.name], **kwargs)


def _param_parser(param: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return param.parse_text(text)
        except StudioError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    parse.__name__ = param.name
    return parse


def add_model_flags(parser: argparse.ArgumentParser, models: Sequence[Mapping[str, Any]], chosen: ModelFlags | None,
                    init_schemes: Sequence[str], *, what: str = "model") -> None:
    names = [str(m["name"]) for m in models]
    group = parser.add_argument_group(what)
    group.add_argument("--model", dest="model.name", default=argparse.SUPPRESS, metavar="NAME",
                       help=f"The architecture ({', '.join(names)}). Its hyperparameters become flags; "
                       "'studio train --model NAME --help' lists them.")
    presets = list(chosen.info.get("presets", {})) if chosen else []
    default = chosen.info.get("default_preset") if chosen else None
    group.add_argument("--preset", dest="model.preset", default=argparse.SUPPRESS, metavar="PRESET",
                       help="A size preset of the model" + (f" ({', '.join(presets)}; default {default})"
                                                             if presets else "") +
                       "; the hyperparameter flags override it.")
    group.add_argument("--init", dest="model.init", default=argparse.SUPPRESS, choices=list(init_schemes),
                       metavar="{" + ",".join(init_schemes) + "}", help="Weight initialisation. Default: default.")
    if chosen is not None:
        chosen.make_group(parser)
