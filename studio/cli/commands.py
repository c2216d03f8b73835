"""The sub-commands: each builds a request, calls the same handler the window calls, and reports.

Every handler comes from ``ctx.handler(operation)``, i.e. ``default_registry().get("pytorch", op)``
(REQ-X01). Input is checked before any work (the output path included), so bad input exits 2
with nothing written; a trained model is saved through the ``save`` handler, so the file is the
same checkpoint the window writes (REQ-X02). Under ``torchrun`` training is distributed and only
rank 0 prints, logs and writes (REQ-X03).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.backend.core.config_merge import merge_config
from studio.backend.core.errors import StudioError, ValidationError
from studio.backend.core.formatting import format_bytes
from studio.backend.core.handler import RunControl
from studio.backend.core.project import Project, key_line, load_project, project_lines
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    EvaluateRequest,
    ExportRequest,
    InspectDataRequest,
    InspectModelRequest,
    LoadRequest,
    ModelSpec,
    PredictRequest,
    RuntimeConfig,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.results import TrainResult
from studio.cli import doctor, import_weights, render
from studio.cli.context import Context
from studio.cli.exit_codes import BAD_INPUT, INTERRUPTED, OK, RunFailure, exit_code_for
from studio.cli.options import (
    ModelFlags,
    add_contract_flags,
    add_data_flags,
    add_model_flags,
    data_spec,
    given,
)
from studio.cli.progress import choose_progress

__all__ = ["SPECS", "CommandSpec", "check_output", "torchrun_command"]

CHECKPOINT_SUFFIX = ".safetensors"
EXPORT_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".torchscript")}


@dataclass(frozen=True)
class CommandSpec:
    description: str
    add_arguments: Callable[[argparse.ArgumentParser, Context, ModelFlags | None], None]
    run: Callable[[argparse.Namespace, Context, ModelFlags | None], int]
    prepare: Callable[[list[str], Context], ModelFlags | None] | None = None  # the model whose flags to add


# -- shared flags ---------------------------------------------------------------------------------------

def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="Machine-readable output on stdout: one JSON object per line (the events of a run, "
                        "then the result).")


def _add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", metavar="PROJECT.studio.json",
                        help="A project file saved by the window; flags override its settings.")


def _add_run_flags(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None, *, what: str) -> None:
    cat = ctx.catalogue()
    add_data_flags(parser, [d["name"] for d in cat.datasets])
    add_model_flags(parser, cat.models, model, cat.choices.get("init", ("default",)), what=what)
    train = parser.add_argument_group("training")
    choices = {"config.optimizer": cat.choices.get("optimizers"), "config.schedule": cat.choices.get("schedules"),
               "config.precision": cat.choices.get("precisions")}
    add_contract_flags(train, TrainConfig, "config", choices=choices)
    runtime = parser.add_argument_group("runtime")
    add_contract_flags(runtime, RuntimeConfig, "runtime")
    runtime.add_argument("--nproc", type=int, metavar="N",
                         help="Processes per machine. Studio does not start processes itself: launch it with "
                         "'torchrun --standalone --nproc_per_node N -m studio train ...'; under torchrun this flag, if given, must equal N.")
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="PATH.safetensors",
                     help="Save the trained model here (the window's checkpoint format). Checked before training.")
    out.add_argument("--checkpoint", metavar="PATH.safetensors",
                     help="Write a resumable training checkpoint here after every epoch.")
    out.add_argument("--resume", metavar="PATH.safetensors", help="Continue a training checkpoint exactly.")
    _add_json(out)


def _prepare_model(rest: list[str], ctx: Context) -> ModelFlags:
    """The model whose hyperparameters become flags: --model, else the project's, else the default."""
    name = _flag_value(rest, "--model")
    if name is None:
        project = next((t for t in rest if t.endswith(".json") and not t.startswith("-")), None)
        if project is not None:
            name = load_project(project).model.name
    name = name or ModelSpec().name
    models = {str(m["name"]): m for m in ctx.catalogue().models}
    if name not in models:
        import difflib

        close = difflib.get_close_matches(name, list(models), n=1, cutoff=0.5)
        raise ValidationError(f"There is no model named {name!r}." + (f" Did you mean {close[0]!r}?" if close else ""),
                              code="model.unknown", field="model.name", value=name,
                              hint=f"Models: {', '.join(models)}.")
    return ModelFlags(models[name])


def _flag_value(rest: list[str], flag: str) -> str | None:
    for i, token in enumerate(rest):
        if token == flag and i + 1 < len(rest):
            return rest[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def _model_spec(args: argparse.Namespace, base: ModelSpec) -> ModelSpec:
    partial = given(args, "model")
    if partial.get("name", base.name) != base.name:
        base = ModelSpec()  # another architecture: the project's preset and hyperparameters do not apply
    hparams = given(args, "hparam")
    if hparams:
        partial["hparams"] = {**base.hparams, **hparams}
    return merge_config(base, partial)


def _is_project_path(text: str) -> bool:
    return text.lower().endswith(".json")


def _data_given_as_project(args: argparse.Namespace) -> None:
    """``studio inspect data FOLDER`` means ``--data FOLDER``: a first argument that is not a project file is data."""
    text = getattr(args, "project", None)
    if not text or _is_project_path(text):
        return
    if getattr(args, "data.spec", None) is not None:
        raise ValidationError(f"{text!r} is not a project file (.studio.json), and --data is given too.",
                              code="usage.bad_project", field="project", value=text,
                              hint="Give the data once: as the first argument or with --data.")
    setattr(args, "data.spec", text)
    args.project = None


def _load_project(args: argparse.Namespace, operation: str) -> Project | None:
    if not getattr(args, "project", None):
        return None
    if not _is_project_path(args.project):
        raise ValidationError(f"{args.project!r} is not a project file (.studio.json); data is given with --data.",
                              code="usage.bad_project", field="project", value=args.project,
                              hint=f"Run: studio {operation} --data {args.project} ...")
    project = load_project(args.project)
    if project.operation != operation:
        raise ValidationError(f"{args.project} is a {project.operation} project; run it with 'studio "
                              f"{project.operation} {args.project}' or 'studio run {args.project}'.",
                              code="project.wrong_operation", field="operation", value=project.operation)
    return project


def _with_project_line(exc: StudioError, args: argparse.Namespace) -> StudioError:
    """Name the project file's line of the setting an error is about, when there is one."""
    path = getattr(args, "project", None)
    if not path or not exc.field or "line " in exc.message:
        return exc
    try:
        line = key_line(project_lines(Path(path).read_text(encoding="utf-8")), str(exc.field))
    except (OSError, ValueError):
        return exc
    if line:
        exc.message = f"{exc.message.rstrip('.')} ({path}, line {line})."
    return exc


# -- output paths ---------------------------------------------------------------------------------------

def check_output(path: str | None, suffixes: tuple[str, ...], flag: str = "--out") -> str | None:
    """Refuse, before any work, an output path that cannot be written (exit 2, nothing written)."""
    if not path:
        return None
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ValidationError(f"{flag} {path} is a folder; give a file name inside it.", code="path.is_dir",
                              field=flag, value=path)
    if suffixes and not target.name.lower().endswith(suffixes):
        raise ValidationError(f"{flag} {path}: the file name must end in {' or '.join(suffixes)}.",
                              code="path.bad_suffix", field=flag, value=path)
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"{flag} {path}: {folder} is a file, not a folder.", code="path.unwritable",
                              field=flag, value=path, hint="Choose a path inside a folder.")
    if not folder.is_dir():
        raise ValidationError(f"{flag} {path}: the folder {folder} does not exist.", code="path.unwritable",
                              field=flag, value=path, hint="Create the folder first or choose another path.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".studio-probe-"):
            pass
    except OSError as exc:
        raise ValidationError(f"{flag} {path} cannot be written: {exc.strerror or exc}.", code="path.unwritable",
                              field=flag, value=path, hint="Choose a folder you can write to.") from exc
    if target.exists() and not os.access(target, os.W_OK):
        raise ValidationError(f"{flag} {path} exists and is read-only.", code="path.unwritable", field=flag,
                              value=path)
    return str(target)


# -- torchrun -------------------------------------------------------------------------------------------

def under_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def torchrun_command(nproc: int, argv: list[str]) -> str:
    rest: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--nproc":
            skip = True
            continue
        if token.startswith("--nproc="):
            continue
        rest.append(token)
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = str(torchrun) if torchrun.exists() else "torchrun"
    return f"{launcher} --standalone --nproc_per_node {nproc} -m studio " + " ".join(rest)


def _start_distributed(args: argparse.Namespace, runtime: RuntimeConfig, ctx: Context, argv: list[str]) -> Any:
    nproc = getattr(args, "nproc", None)
    if nproc is not None and nproc < 1:
        raise ValidationError(f"--nproc must be at least 1, not {nproc}.", code="usage.bad_nproc", field="--nproc")
    if not under_torchrun():
        if nproc is not None:
            raise ValidationError(
                f"--nproc {nproc}: Studio does not start processes itself; torchrun does.",
                code="usage.needs_torchrun", field="--nproc", value=nproc,
                hint=f"Run: {torchrun_command(nproc, argv)}  (on several machines replace --standalone by "
                     "--nnodes, --rdzv_id, --rdzv_backend c10d and --rdzv_endpoint; see the README's scale-out "
                     "section).")
        return None
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    if nproc is not None and nproc != local_world:
        raise ValidationError(f"--nproc {nproc} does not match torchrun's {local_world} processes per machine.",
                              code="usage.bad_nproc", field="--nproc", value=nproc,
                              hint="Leave --nproc out under torchrun, or give torchrun's --nproc_per_node.")
    from studio.backend.pytorch import distributed

    return distributed.init_distributed(runtime)


# -- train and distill ----------------------------------------------------------------------------------

def _train_request(args: argparse.Namespace, ctx: Context, project: Project | None) -> TrainRequest:
    base = project.to_request() if project else TrainRequest()
    assert isinstance(base, TrainRequest)
    datasets = [d["name"] for d in ctx.catalogue().datasets]
    return TrainRequest(
        data=data_spec(args, base.data, datasets), model=_model_spec(args, base.model),
        config=merge_config(base.config, given(args, "config")),
        runtime=merge_config(base.runtime, given(args, "runtime")),
        resume_from=_abspath(args.resume), checkpoint_path=_abspath(args.checkpoint) or base.checkpoint_path,
    )


def _abspath(path: str | None) -> str | None:
    return str(Path(path).expanduser().absolute()) if path else None


def _add_train(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    _add_project(parser)
    _add_run_flags(parser, ctx, model, what="model")


def cmd_train(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    project = _load_project(args, "train")
    try:
        request = _train_request(args, ctx, project)
    except StudioError as exc:
        raise _with_project_line(exc, args) from None
    out = check_output(args.out or (project.output if project else None), (CHECKPOINT_SUFFIX,))
    check_output(request.checkpoint_path, (CHECKPOINT_SUFFIX,), "--checkpoint")
    return _run_training("train", request, out, args, ctx)


def _distill_request(args: argparse.Namespace, ctx: Context, project: Project | None) -> DistillRequest:
    teachers = [_abspath(t) for t in (args.teacher or [])]
    if project is not None:
        base = project.to_request()
        assert isinstance(base, DistillRequest)
        teachers = teachers or [base.teacher, *base.teachers]
    else:
        if not teachers:
            raise ValidationError("studio distill needs a teacher checkpoint: --teacher PATH.safetensors.",
                                  code="usage.missing_teacher", field="--teacher")
        base = DistillRequest(teacher=str(teachers[0]), data=_teacher_data(str(teachers[0]), ctx, args))
    datasets = [d["name"] for d in ctx.catalogue().datasets]
    return DistillRequest(
        teacher=str(teachers[0]), teachers=tuple(str(t) for t in teachers[1:]),
        student=_model_spec(args, base.student), data=data_spec(args, base.data, datasets),
        config=merge_config(base.config, given(args, "config")),
        distill=merge_config(base.distill, given(args, "distill")),
        runtime=merge_config(base.runtime, given(args, "runtime")), resume_from=_abspath(args.resume),
        checkpoint_path=_abspath(args.checkpoint) or base.checkpoint_path,
    )


def _teacher_data(teacher: str, ctx: Context, args: argparse.Namespace) -> DataSpec:
    """Without --data or a project, a student learns on the data its teacher was trained on."""
    if getattr(args, "data.spec", None):
        return DataSpec()
    loaded = ctx.handler("load")(LoadRequest(path=teacher))
    data = loaded.metadata.get("data")
    return DataSpec.from_dict(data) if isinstance(data, dict) else DataSpec()


def _add_distill(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    _add_project(parser)
    parser.add_argument("--teacher", action="append", metavar="PATH.safetensors",
                        help="The teacher checkpoint (repeat for an ensemble of teachers).")
    _add_run_flags(parser, ctx, model, what="student model")
    group = parser.add_argument_group("distillation")
    add_contract_flags(group, DistillConfig, "distill", rename={"method": "distill_method"})


def cmd_distill(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    ctx.handler("distill")  # a backend without distillation is refused before the teacher is opened
    project = _load_project(args, "distill")
    try:
        request = _distill_request(args, ctx, project)
    except StudioError as exc:
        raise _with_project_line(exc, args) from None
    out = check_output(args.out or (project.output if project else None), (CHECKPOINT_SUFFIX,))
    check_output(request.checkpoint_path, (CHECKPOINT_SUFFIX,), "--checkpoint")
    return _run_training("distill", request, out, args, ctx)


def _sized(request: Any, ctx: Context) -> Any:
    """An image folder's size chosen for the model now, so the terminal says which and why (a resumed run
    keeps the size it was trained at, which the handler reads from the checkpoint)."""
    if request.data.source != "images" or request.resume_from:
        return request
    from studio.backend.pytorch.image_size import image_size_for

    model = request.model if isinstance(request, TrainRequest) else request.student
    data, note = image_size_for(request.data, model)
    if note and ctx.speaks and not ctx.json_mode:
        ctx.out(note)
    return dataclasses.replace(request, data=data)


def _run_training(operation: str, request: Any, out: str | None, args: argparse.Namespace, ctx: Context) -> int:
    """Run ``train`` or ``distill`` with progress, Ctrl-C as a clean stop, then save through ``save``."""
    handler = ctx.handler(operation)
    request = _sized(request, ctx)
    save = ctx.handler("save") if out else None  # resolved now: a missing handler is bad input, not a late failure
    dist = _start_distributed(args, request.runtime, ctx, ctx.argv)
    try:
        if dist is not None and not dist.is_writer:
            ctx.json_mode = False  # only rank 0 speaks and writes (REQ-X03)
            request = dataclasses.replace(request, checkpoint_path=None)
            out = None
        progress = choose_progress(args.json, stream=ctx.stdout) if ctx.speaks else None
        control = RunControl()

        def sink(event: Any) -> None:
            ctx.run_started = True
            if progress is not None:
                progress(event)

        try:
            with ctx.cancel_on_interrupt(control):
                result = handler(request, events=sink, control=control)
        except StudioError as exc:
            if progress is not None:
                progress.close()
            if ctx.run_started and exit_code_for(exc) == BAD_INPUT:
                raise RunFailure(exc.message, code=exc.code, field=exc.field, hint=exc.hint) from exc
            raise _with_project_line(exc, args) from None
        if progress is not None:
            progress.close()
        train = result.train if not isinstance(result, TrainResult) and hasattr(result, "train") else result
        cancelled = train.status == "cancelled"
        if ctx.json_mode:
            ctx.emit_json(result)
        elif ctx.speaks:
            render.training_summary(ctx, operation, result, train)
        saved = _save(save, train, out, ctx, cancelled) if save is not None and out else None
        if saved is None and not out and ctx.speaks and not ctx.json_mode and train.steps:
            ctx.err("Not saved: give --out PATH.safetensors to keep the model.")
        return INTERRUPTED if cancelled or ctx.interrupted else OK
    finally:
        if dist is not None:
            dist.close()


def _save(save: Any, train: TrainResult, out: str, ctx: Context, cancelled: bool) -> Any:
    if train.steps == 0:
        ctx.err("Nothing was trained, so nothing was saved.")
        return None
    try:
        info = save(SaveRequest(model=train.model, path=out))
    except StudioError as exc:
        raise RunFailure(f"Training {'stopped' if cancelled else 'finished'} but the model could not be saved: "
                         f"{exc.message}", code=exc.code, field=exc.field, hint=exc.hint) from exc
    if ctx.json_mode:
        ctx.emit_json(info)
    else:
        state = "the state reached when stopped" if cancelled else "the model"
        ctx.out(f"Saved {state} to {info.path} ({format_bytes(info.size_bytes)}).")
    return info


# -- evaluate, predict, export --------------------------------------------------------------------------

def _load(path: str, ctx: Context) -> Any:
    if not Path(path).expanduser().exists():
        raise ValidationError(f"There is no checkpoint at {path}.", code="checkpoint.not_found", field="model",
                              value=path, hint="Give the path of a .safetensors file saved by Studio.")
    return ctx.handler("load")(LoadRequest(path=str(Path(path).expanduser())))


def _add_evaluate(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    parser.add_argument("model", metavar="MODEL.safetensors", help="A checkpoint saved by Studio.")
    parser.add_argument("data_positional", nargs="?", metavar="DATA",
                        help="The data to measure on, as --data takes it (default: the data the model was "
                        "trained on).")
    add_data_flags(parser, [d["name"] for d in ctx.catalogue().datasets])
    parser.add_argument("--split", choices=("train", "val", "test"), default="val",
                        help="Which split of the data to measure. Default: val.")
    parser.add_argument("--batch-size", type=int, default=256, metavar="N", help="Samples per batch. Default: 256.")
    _add_json(parser)


def cmd_evaluate(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    args.project = args.data_positional
    _data_given_as_project(args)
    loaded = _load(args.model, ctx)
    saved = loaded.metadata.get("data")
    base = DataSpec.from_dict(saved) if isinstance(saved, dict) else DataSpec()
    data = data_spec(args, base, [d["name"] for d in ctx.catalogue().datasets])
    result = ctx.handler("evaluate")(EvaluateRequest(model=loaded.model, data=data, split=args.split,
                                                     batch_size=args.batch_size))
    if args.json:
        ctx.emit_json(result)
    else:
        render.evaluation(ctx, result, data)
    return OK


def _add_predict(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    parser.add_argument("model", metavar="MODEL.safetensors", help="A checkpoint saved by Studio.")
    parser.add_argument("inputs", metavar="INPUTS",
                        help="A CSV file (one row per sample), an image, a folder of images, a .npy/.npz file, "
                        "inline JSON rows such as '[[5.1, 3.5, 1.4, 0.2]]', or - to read JSON rows from stdin.")
    parser.add_argument("--top-k", type=int, default=3, metavar="K", help="Classes listed per sample. Default: 3.")
    parser.add_argument("--batch-size", type=int, default=256, metavar="N", help="Samples per batch. Default: 256.")
    parser.add_argument("--out", metavar="PREDICTIONS.csv",
                        help="Also write the predictions to this CSV file: one row per input (its file or line), "
                        "the label, its probability and every class's probability.")
    _add_json(parser)


def _write_predictions(path: str, result: Any) -> Any:
    import csv

    from studio.backend.pytorch.serialization.atomic import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(render.prediction_rows(result))

    return atomic_write(path, write, suffixes=(".csv",), error_cls=ValidationError)


def cmd_predict(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    inputs: Any = args.inputs
    if inputs == "-":
        inputs = _json_rows(sys.stdin.read(), "stdin")
    elif inputs.lstrip().startswith("["):
        inputs = _json_rows(inputs, "the inputs")
    else:
        inputs = str(Path(inputs).expanduser().absolute())
    out = check_output(args.out, (".csv",))
    loaded = _load(args.model, ctx)
    result = ctx.handler("predict")(PredictRequest(model=loaded.model, inputs=inputs, batch_size=args.batch_size,
                                                   top_k=args.top_k))
    if args.json:
        ctx.emit_json(result)
    else:
        render.predictions(ctx, result)
    if out is not None:
        info = _write_predictions(out, result)
        if not args.json:
            ctx.err(f"Wrote {len(result.names)} predictions to {info.path}.")
    return OK


def _json_rows(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where} is not valid JSON: {exc.msg} at column {exc.colno}.", code="usage.bad_inputs",
                              field="inputs") from exc


def _add_export(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    parser.add_argument("model", metavar="MODEL.safetensors", help="A checkpoint saved by Studio.")
    parser.add_argument("--format", choices=tuple(EXPORT_SUFFIXES), default="onnx",
                        help="onnx (for ONNX Runtime and most tools) or torchscript (for C++ and mobile). "
                        "Default: onnx.")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="The exported file: .onnx, or .pt / .pth / .torchscript for TorchScript.")
    parser.add_argument("--tolerance", type=float, default=1e-4, metavar="X",
                        help="Largest allowed difference between the export's outputs and the model's. "
                        "Default: 1e-4.")
    parser.add_argument("--bare", action="store_true",
                        help="Export the bare network, which takes normalised inputs ((x - mean) / std with the "
                        "training statistics written in the file). By default the export takes the values as "
                        "they are in your files (the normalisation is inside it).")
    parser.add_argument("--softmax", action="store_true",
                        help="End the graph in probabilities (softmax; sigmoid for binary and multi-label) "
                        "instead of logits.")
    parser.add_argument("--pixels", choices=("0..1", "0..255"), default="0..1",
                        help="The pixel values an image model's export takes: 0..1 (as Studio reads images) or "
                        "0..255 (as most image libraries give them). Default: 0..1.")
    _add_json(parser)


def cmd_export(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    out = check_output(args.out, EXPORT_SUFFIXES[args.format])
    loaded = _load(args.model, ctx)
    assert out is not None
    try:
        result = ctx.handler("export")(ExportRequest(model=loaded.model, path=out, format=args.format,
                                                     tolerance=args.tolerance, include_preprocessing=not args.bare,
                                                     softmax=args.softmax, pixel_range=args.pixels))
    except StudioError as exc:
        if exit_code_for(exc) == BAD_INPUT:
            raise
        raise RunFailure(exc.message, code=exc.code, field=exc.field, hint=exc.hint) from exc
    if args.json:
        ctx.emit_json(result)
    else:
        ctx.out(f"Exported {args.format} to {result.path} ({format_bytes(result.size_bytes)}); largest difference "
                f"from the model: {result.max_abs_diff:.2e}.")
        takes = (result.metadata.get("input") or {}).get("values")
        if takes:
            ctx.out(f"It takes {takes}.")
        if result.loader_snippet:
            ctx.out("Load it with:\n" + result.loader_snippet.rstrip("\n"))
    return OK


# -- inspect ----------------------------------------------------------------------------------------------

def _add_inspect_data(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    parser.add_argument("project", nargs="?", metavar="DATA | PROJECT.studio.json",
                        help="The data (as --data takes it: a built-in name, a CSV file, an image folder, a NumPy "
                        "file) or a project file saved by the window.")
    add_data_flags(parser, [d["name"] for d in ctx.catalogue().datasets])
    parser.add_argument("--model", metavar="NAME", help="The model the data is for; it picks the size an image "
                        "folder is resized to (default: mlp's).")
    parser.add_argument("--preview-rows", type=int, default=5, metavar="N", help="Samples previewed. Default: 5.")
    _add_json(parser)


def _project_any(args: argparse.Namespace) -> Project | None:
    return load_project(args.project) if getattr(args, "project", None) else None


def cmd_inspect_data(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    _data_given_as_project(args)
    project = _project_any(args)
    data = data_spec(args, project.data if project else DataSpec(), [d["name"] for d in ctx.catalogue().datasets])
    model_spec = ModelSpec(name=args.model) if args.model else (project.model if project else None)
    summary = ctx.handler("inspect_data")(InspectDataRequest(data=data, preview_rows=args.preview_rows,
                                                             model=model_spec))
    if args.json:
        ctx.emit_json(summary)
    else:
        render.data_summary(ctx, summary)
    return OK


def _add_inspect_model(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    _add_project(parser)
    cat = ctx.catalogue()
    add_data_flags(parser, [d["name"] for d in cat.datasets])
    add_model_flags(parser, cat.models, model, cat.choices.get("init", ("default",)))
    _add_json(parser)


def cmd_inspect_model(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    _data_given_as_project(args)
    project = _project_any(args)
    data = data_spec(args, project.data if project else DataSpec(), [d["name"] for d in ctx.catalogue().datasets])
    spec = _model_spec(args, project.model if project else ModelSpec())
    summary = ctx.handler("inspect_model")(InspectModelRequest(model=spec, data=data))
    if args.json:
        ctx.emit_json(summary)
    else:
        render.model_summary(ctx, summary, data)
    return OK


def _add_inspect_checkpoint(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    parser.add_argument("model", metavar="MODEL.safetensors", help="A checkpoint saved by Studio.")
    _add_json(parser)


def cmd_inspect_checkpoint(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    loaded = _load(args.model, ctx)
    if args.json:
        ctx.emit_json(loaded)
    else:
        render.checkpoint(ctx, loaded)
    return OK


def _add_inspect_catalogue(parser: argparse.ArgumentParser, ctx: Context, model: ModelFlags | None) -> None:
    _add_json(parser)


def cmd_inspect_catalogue(args: argparse.Namespace, ctx: Context, model: ModelFlags | None) -> int:
    from studio.backend.core.requests import CatalogueRequest

    cat = ctx.handler("catalogue")(CatalogueRequest())
    if args.json:
        ctx.emit_json(cat)
    else:
        render.catalogue(ctx, cat)
    return OK


SPECS: dict[str, CommandSpec] = {
    "train": CommandSpec(
        "Train a model on data and save it. Give a project file saved by the window, flags, or both (flags "
        "override the project).\n\nexample:\n  studio train --data digits --model mlp --hidden 128,64 --epochs 5 "
        "--out model.safetensors\n  studio train project.studio.json --epochs 1",
        _add_train, cmd_train, _prepare_model),
    "distill": CommandSpec(
        "Distil a teacher checkpoint into a (smaller) student model: the student learns from the true labels "
        "and from the teacher's outputs.\n\nexample:\n  studio distill --teacher big.safetensors --model mlp "
        "--hidden 32 --epochs 5 --out small.safetensors",
        _add_distill, cmd_distill, _prepare_model),
    "evaluate": CommandSpec(
        "Measure a saved model on a split of the data it was trained on (or of --data).\n\nexample:\n"
        "  studio evaluate model.safetensors --split val",
        _add_evaluate, cmd_evaluate),
    "predict": CommandSpec(
        "Predict with a saved model, in input order.\n\nexample:\n  studio predict iris.safetensors "
        "'[[5.1, 3.5, 1.4, 0.2]]' --top-k 2",
        _add_predict, cmd_predict),
    "export": CommandSpec(
        "Export a saved model to ONNX or TorchScript; the export is run and compared with the model before "
        "it is reported.\n\nexample:\n  studio export model.safetensors --format onnx --out model.onnx",
        _add_export, cmd_export),
    "import-weights": CommandSpec(import_weights.DESCRIPTION, import_weights.add_import_weights,
                                  import_weights.cmd_import_weights),
    "inspect data": CommandSpec("Describe a dataset: task, input shape, classes, splits.",
                                _add_inspect_data, cmd_inspect_data),
    "inspect model": CommandSpec(
        "Describe a model on given data: parameters, size, compute and layers.\n\nexample:\n"
        "  studio inspect model --model resnet --preset tiny --data shapes",
        _add_inspect_model, cmd_inspect_model, _prepare_model),
    "inspect checkpoint": CommandSpec("Describe what a saved checkpoint holds.", _add_inspect_checkpoint,
                                      cmd_inspect_checkpoint),
    "inspect catalogue": CommandSpec("List the built-in datasets, the models with their presets, and the devices.",
                                     _add_inspect_catalogue, cmd_inspect_catalogue),
    "doctor": CommandSpec(doctor.DESCRIPTION, doctor.add_doctor, doctor.cmd_doctor),
}
