"""The ``distill`` handler (REQ-H16..H20, REQ-H24): teacher(s) + student spec + data + configs -> DistillResult.

It runs the ``train`` handler's path (validate, apply the runtime, load, split, fit the
normalisation, build the student with the run's seed, ``Trainer``, ``store.put``) with a
:class:`~studio.backend.pytorch.distill.loop.Distillation` plugged into the trainer as its
objective, so events, cancel, pause and exact resume are the trainer's own. Before the first
step it loads each teacher read-only, checks it against the student's data (task, input shape,
outputs, class names), validates the whole distillation configuration, resolves the feature
layers, fills the teacher cache and evaluates the teacher on the validation split; warnings
found on the way are emitted right after ``RunStarted``.

Training checkpoints (``checkpoint_path``, written after every epoch; ``resume_from``) hold the
student and its optimiser state as a plain training checkpoint (so ``load`` and ``train`` read
them) plus ``state/trainer/...``, ``state/adapters/...`` (and their optimiser state),
``state/baseline/...``; the teachers are recorded by path and SHA-256 in the metadata's
``distillation`` block, never copied, and a changed teacher is refused on resume.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.backend.core.errors import CheckpointError, DistillError, StudioError, ValidationError
from studio.backend.core.events import Event, RunStarted, RunWarning
from studio.backend.core.handler import EventSink, RunControl
from studio.backend.core.requests import DistillConfig, DistillRequest
from studio.backend.core.results import DistillResult, TrainResult
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import model_files, run_setup
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch import serialization as ser
from studio.backend.pytorch.distill.adapters import Adapters
from studio.backend.pytorch.distill.cache import REFUSED_REASON, TeacherCache, data_fingerprint
from studio.backend.pytorch.distill.compare import (
    BaselineRun,
    comparison_row,
    evaluate_on,
    gap_closed,
    measure_latency,
    saved_size,
    teacher_warning,
)
from studio.backend.pytorch.distill.loop import Distillation
from studio.backend.pytorch.distill.objective import FEATURE_LOSSES, DistillObjective, resolve_method
from studio.backend.pytorch.distill.schedules import build_schedules
from studio.backend.pytorch.distill.teacher import (
    FrozenTeacher,
    TeacherEnsemble,
    TeacherInfo,
    check_teacher_student,
    load_teacher,
    normalisation_maps,
    normalise_weights,
)
from studio.backend.pytorch.evaluation import evaluate_outputs
from studio.backend.pytorch.image_size import image_size_for
from studio.backend.pytorch.inference import run_model
from studio.backend.pytorch.model_store import TrainedModel, store
from studio.backend.pytorch.runtime import apply_runtime
from studio.backend.pytorch.serialization.atomic import check_target
from studio.backend.pytorch.trainer import EpochPlan, Trainer
from studio.backend.pytorch.trainer.losses import TaskLoss

__all__ = ["distill", "save_distill_checkpoint", "CACHE_LIMIT_BYTES"]

CACHE_LIMIT_BYTES = 1 << 30  # teacher outputs and features kept in memory at most


class _Events:
    """The caller's sink, with ``RunStarted`` marked as a distillation and the pending warnings after it."""

    def __init__(self, sink: EventSink, config: DistillConfig, pending: list[tuple[str, str]]) -> None:
        self.sink, self.config, self.pending = sink, config, pending

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.sink(dataclasses.replace(event, operation="distill",
                                          config={**event.config, "distill": self.config.to_dict()}))
            for code, message in self.pending:
                self.sink(RunWarning(event.run_id, code, message))
            self.pending = []
            return
        self.sink(event)


def _require_in_memory(bundle: data_lib.DataBundle) -> None:
    if not bundle.in_memory:
        raise DistillError(f"Distillation needs the data in memory, but the image folder {bundle.name!r} is read "
                           "from disk batch by batch (too large for memory_limit_mb, or on_disk: true). Training "
                           "alone works on it.", code="distill.data_on_disk", field="data",
                           hint="Set the option on_disk to false (or raise memory_limit_mb) if it fits in memory; "
                                "otherwise use a smaller image size or fewer images.")


# -- validation that needs no data ---------------------------------------------------------------
def _check_config(cfg: DistillConfig, n_teachers: int) -> None:
    if not isinstance(cfg, DistillConfig):
        raise ValidationError("distill must be a DistillConfig.", field="distill", value=type(cfg).__name__)
    if cfg.temperature is not None:
        t = cfg.temperature
        ok = isinstance(t, (int, float)) and not isinstance(t, bool)
        if not ok or not math.isfinite(t) or t <= 0:
            raise ValidationError(f"The temperature must be a finite number above zero, not {t!r}.",
                                  field="distill.temperature", value=t if ok else repr(t),
                                  hint="Use a value from 1 to 20; 4 is a good start.")
    for name in ("hard_weight", "soft_weight", "feature_weight"):
        w = getattr(cfg, name)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValidationError(f"{name} must be a finite number of at least 0, not {w!r}.",
                                  field=f"distill.{name}", value=w if isinstance(w, (int, float)) else repr(w))
    if cfg.method not in ("kd", "dkd", "regression"):
        raise ValidationError(f"method must be kd, dkd or regression, not {cfg.method!r} (feature losses go in "
                              "feature_loss).", field="distill.method", value=cfg.method)
    if cfg.feature_loss not in FEATURE_LOSSES:
        raise ValidationError(f"feature_loss must be one of {', '.join(FEATURE_LOSSES)}, not {cfg.feature_loss!r}.",
                              field="distill.feature_loss", value=cfg.feature_loss)
    for i, pair in enumerate(cfg.feature_pairs):
        if len(pair) != 2 or not all(isinstance(n, str) and n for n in pair):
            raise ValidationError(f"feature_pairs[{i}] must be [student layer, teacher layer], not {pair!r}.",
                                  field="distill.feature_pairs", value=repr(pair))
    normalise_weights(cfg.teacher_weights, n_teachers)


def _teacher_input_shape(ref: str) -> tuple[int, ...] | None:
    """The teacher's input shape from the store or its checkpoint's header; None when it cannot be read
    (loading the teacher reports why)."""
    try:
        if ref in store:
            return tuple(store.get(ref).input_shape)
        return tuple(ser.read_metadata(Path(ref).expanduser())["model"]["input_shape"])
    except (StudioError, OSError, KeyError, TypeError):
        return None


def _teacher_refs(request: DistillRequest) -> list[str]:
    refs = ([request.teacher] if request.teacher else []) + list(request.teachers)
    if not refs:
        raise ValidationError("Choose a teacher: a Studio checkpoint file or a trained model.", field="teacher")
    return refs


def _check_layers(module: nn.Module, names: list[str], side: str) -> None:
    known = dict(module.named_modules())
    unknown = [n for n in names if n not in known or n == ""]
    if unknown:
        offered = model_lib.feature_names(module)
        raise DistillError(f"The {side} has no layer {', '.join(map(repr, unknown))}; its feature layers are "
                           f"{', '.join(offered) or 'none'}.", code="distill.unknown_layer",
                           field=f"distill.feature_pairs.{side}", value={"unknown": unknown, "available": list(offered)},
                           hint=f"Pick one of the {side}'s feature layers.")


# -- the handler ----------------------------------------------------------------------------------
@run_setup.handler_errors("distill", oom_hint="Use a smaller batch size, a smaller student or turn off caching.")
def distill(request: DistillRequest, *, events: EventSink | None = None,
            control: RunControl | None = None) -> DistillResult:
    """Distil ``request.teacher`` (and ``teachers``) into ``request.student`` on ``request.data`` (REQ-H16)."""
    run_setup.require_request(request, DistillRequest)
    cfg = request.distill
    refs = _teacher_refs(request)
    _check_config(cfg, len(refs))
    data_lib.validate_fractions(request.data.val_fraction, request.data.test_fraction)
    if request.checkpoint_path:
        check_target(request.checkpoint_path, suffixes=(".safetensors",))
    interval = run_setup.checkpoint_interval(request.checkpoint_interval_s)
    resume_meta = _resume_metadata(request.resume_from) if request.resume_from else None
    device = apply_runtime(request.runtime)
    seed = request.runtime.seed

    # data, exactly as `train` prepares it (an image folder at its teacher's size unless the size is given)
    data_spec = image_size_for(request.data, request.student, _teacher_input_shape(refs[0]))[0]
    request = dataclasses.replace(request, data=data_spec)
    data = run_setup.prepare_data(request.data, _require_in_memory)
    bundle, splits, prep, train_xy, val_xy = data.bundle, data.splits, data.prep, data.train_xy, data.val_xy
    x, y = bundle.x, bundle.y  # type: ignore[union-attr]
    task, shape = bundle.task, tuple(bundle.input_shape)

    # teachers: loaded read-only, checked against the student's data before anything else
    loaded = [load_teacher(ref, device) for ref in refs]
    frozen, infos = [t for t, _ in loaded], [i for _, i in loaded]
    for info in infos:
        check_teacher_student(info, request.student, bundle)
        target = request.checkpoint_path
        if target and info.path and Path(target).expanduser().absolute() == Path(info.path):
            raise ValidationError("checkpoint_path is the teacher's own file: the run would overwrite its teacher. "
                                  "Choose another file.", field="checkpoint_path", value=str(target))
    if resume_meta is not None:
        _check_teachers_unchanged(resume_meta, infos, request.resume_from)  # type: ignore[arg-type]
    ensemble = TeacherEnsemble(frozen, cfg.teacher_weights or None, task=task)

    # the objective: every setting validated against the task and the run's length
    steps = EpochPlan(len(train_xy[0]), request.config.batch_size, request.config.accumulate).steps
    horizon = (steps * request.config.epochs, request.config.epochs)
    objective = _objective(cfg, task, request.config, horizon)
    warnings = list(objective.notes)

    # student, feature layers and adapters
    student = model_lib.build_model(request.student, shape, int(bundle.num_outputs), seed=seed)
    initial = copy.deepcopy(student) if cfg.baseline else None
    adapters = _adapters(cfg, objective, student, frozen[0], shape, seed)

    # teacher views of the data, the cache, the teacher's own evaluation
    maps = [normalisation_maps(prep, info.preprocessing) for info in infos]
    caches, note = _caches(cfg, request, bundle, ensemble, infos, maps, train_xy[0], objective)
    if note is not None:
        warnings.append(note)
    eval_idx = splits.val if len(splits.val) else splits.train
    teacher_metrics, teacher_outputs = _evaluate_teachers(ensemble, infos, x[eval_idx], y[eval_idx], task,
                                                          tuple(bundle.class_names))
    weak = teacher_warning(teacher_metrics, y[eval_idx], task)
    if weak is not None:
        warnings.append(("distill.teacher_weak", weak))
    teacher_val_metric = _teacher_metric(task, teacher_metrics, teacher_outputs, maps, ensemble,
                                         prep.apply_target(y[eval_idx]))

    run_id = f"distill-{uuid.uuid4().hex[:8]}"
    baseline = BaselineRun(initial, task, request.config, device=device, seed=seed, run_id=run_id) \
        if initial is not None else None
    if baseline is not None:
        baseline.bind(train_xy, val_xy)
    distillation = Distillation(objective, ensemble, adapters=adapters, caches=caches,
                                teacher_inputs=[m[0] for m in maps], teacher_outputs=[m[1] for m in maps],
                                val=val_xy, baseline=baseline, teacher_val_metric=teacher_val_metric)
    tm = TrainedModel(module=student, spec=request.student, input_shape=shape, num_outputs=int(bundle.num_outputs),
                      task=task, class_names=tuple(bundle.class_names), preprocessing=prep.to_dict(),
                      data=request.data, config=request.config,
                      extra_metadata={"distillation": _metadata_block(cfg, objective, infos, ensemble)})
    sink = _Events(events, cfg, warnings) if events is not None else None
    callbacks = [run_setup.EpochCheckpoint(request.checkpoint_path,
                                           lambda path: save_distill_checkpoint(path, tm, trainer), interval)
                 ] if request.checkpoint_path else []
    trainer = Trainer(student, task, request.config, events=sink, control=control, callbacks=callbacks,
                      device=device, seed=seed, run_id=run_id, objective=distillation)
    if request.resume_from:
        _resume(trainer, request.resume_from, device)
    with distillation.attach(trainer.model):
        fit = trainer.fit(train_xy, val_xy)

    tm.module = trainer.model
    tm.metrics = run_setup.metric_floats(fit.final_metrics)
    result_train = run_setup.train_result(fit, store.put(tm))
    baseline_result, baseline_tm = _baseline_result(baseline, tm) if baseline is not None else (None, None)
    comparison, gap = (), None
    if len(splits.val):
        comparison, gap = _compare(ensemble, infos, refs, tm, baseline_tm, teacher_metrics, x[splits.val],
                                   y[splits.val], prep, device)
    return DistillResult(train=result_train, teacher_metrics=teacher_metrics, comparison=comparison,
                         gap_closed=gap, baseline=baseline_result)


def _objective(cfg: DistillConfig, task: str, config: Any, horizon: tuple[int, int]) -> DistillObjective:
    resolve_method(cfg.method, task)
    defaults = {"temperature": float(cfg.temperature) if cfg.temperature is not None else 4.0,
                "hard_weight": float(cfg.hard_weight), "soft_weight": float(cfg.soft_weight),
                "feature_weight": float(cfg.feature_weight)}
    schedules = build_schedules(cfg.schedules, defaults, steps=horizon[0], epochs=horizon[1])
    given_t = cfg.temperature is not None or "temperature" in (cfg.schedules or {})
    return DistillObjective(TaskLoss(task, config), cfg.method, task=task, hard_weight=schedules["hard_weight"],
                            soft_weight=schedules["soft_weight"], feature_weight=schedules["feature_weight"],
                            temperature=schedules["temperature"] if given_t else None,
                            feature_pairs=tuple(tuple(p) for p in cfg.feature_pairs),  # type: ignore[misc]
                            feature_loss=cfg.feature_loss, method_options=dict(cfg.method_options), horizon=horizon)


def _adapters(cfg: DistillConfig, objective: DistillObjective, student: nn.Module, teacher: FrozenTeacher,
              shape: tuple[int, ...], seed: int) -> Adapters | None:
    if not objective.pairs:
        return None
    s_names, t_names = [s for s, _ in objective.pairs], [t for _, t in objective.pairs]
    _check_layers(student, s_names, "student")
    _check_layers(teacher.module, t_names, "teacher")
    s_shapes = model_lib.feature_layers(student, shape, s_names)
    t_shapes = teacher.feature_shapes(shape, t_names)
    if cfg.feature_loss == "attention":
        for s, t in objective.pairs:
            if len(s_shapes[s]) != 3 or len(t_shapes[t]) != 3:
                raise DistillError(
                    f"Attention transfer needs convolutional feature maps on both sides, but the student's {s!r} gives "
                    f"{s_shapes[s]} and the teacher's {t!r} gives {t_shapes[t]} per sample; pick convolutional layers "
                    "or use a hint loss.", code="distill.incompatible", field="distill.feature_pairs",
                    value={"student": [s, list(s_shapes[s])], "teacher": [t, list(t_shapes[t])]})
    with torch.random.fork_rng(devices=[]):  # adapter weights: a function of the seed, not of the random state
        torch.manual_seed(seed)
        return Adapters(objective.pairs, s_shapes, t_shapes, learned=cfg.feature_loss != "attention")


def _caches(cfg: DistillConfig, request: DistillRequest, bundle: Any, ensemble: TeacherEnsemble,
            infos: list[TeacherInfo], maps: list[tuple[Callable, Callable]], train_x: torch.Tensor,
            objective: DistillObjective) -> tuple[list[TeacherCache | None], tuple[str, str] | None]:
    none: list[TeacherCache | None] = [None] * len(infos)
    if not cfg.cache_teacher:
        return none, None
    if data_lib.augmenter_from_spec(request.data.augment, bundle.input_kind, request.data.options) is not None:
        return none, ("distill.cache_refused", f"Teacher outputs are not cached: {REFUSED_REASON}. The teacher runs "
                                               "on every batch instead.")
    names = [t for _, t in objective.pairs]
    per_sample = 4 * infos[0].num_outputs * len(ensemble.active)
    if names:
        per_sample += 4 * sum(math.prod(s) for s in ensemble.first.feature_shapes(bundle.input_shape, names).values())
    if per_sample * len(train_x) > CACHE_LIMIT_BYTES:
        return none, ("distill.cache_too_large", f"Teacher outputs are not cached: they would take "
                                                 f"{per_sample * len(train_x) / 2**20:.0f} MiB. The teacher runs on "
                                                 "every batch instead.")
    caches = list(none)
    for i in ensemble.active:
        inputs = maps[i][0](train_x)
        cache = TeacherCache(infos[i].sha256, data_fingerprint(inputs))
        cache.fill(ensemble.teachers[i], inputs, features=names if i == 0 else [])
        caches[i] = cache
    return caches, None


def _evaluate_teachers(ensemble: TeacherEnsemble, infos: list[TeacherInfo], raw_x: torch.Tensor,
                       raw_y: torch.Tensor, task: str, class_names: tuple[str, ...]
                       ) -> tuple[dict[str, float], list[torch.Tensor | None]]:
    """The teacher's (or ensemble's) metrics as ``evaluate`` computes them, and each teacher's raw outputs."""
    outputs: list[torch.Tensor | None] = [None] * len(infos)
    in_units: list[torch.Tensor | None] = [None] * len(infos)
    for i in ensemble.active:
        tprep = data_lib.Preprocessing.from_dict(infos[i].preprocessing) if infos[i].preprocessing else None
        out = run_model(ensemble.teachers[i].module, tprep.apply(raw_x) if tprep is not None else raw_x, 256)
        outputs[i] = out
        in_units[i] = tprep.inverse_target(out) if task == "regression" and tprep is not None else out
    if len(ensemble.active) == 1:
        mixed = in_units[ensemble.active[0]]
    elif task == "regression":
        mixed = ensemble.combine(in_units, 1.0)
    else:
        mixed = ensemble.combine(outputs, 1.0)  # log p_bar: logits of the averaged probabilities
    return dict(evaluate_outputs(task, mixed, raw_y, class_names).metrics), outputs  # type: ignore[arg-type]


def _teacher_metric(task: str, metrics: dict[str, float], outputs: list[torch.Tensor | None],
                    maps: list[tuple[Callable, Callable]], ensemble: TeacherEnsemble, y_scaled: torch.Tensor) -> float:
    """The teacher's value of the trainer's validation metric (accuracy; regression: MAE on scaled targets)."""
    if task != "regression":
        return float(metrics["accuracy"])
    mapped = [maps[i][1](o) if o is not None else None for i, o in enumerate(outputs)]
    combined = ensemble.combine(mapped, 1.0)
    return float((combined.float().reshape(y_scaled.shape) - y_scaled).abs().mean())


def _metadata_block(cfg: DistillConfig, objective: DistillObjective, infos: list[TeacherInfo],
                    ensemble: TeacherEnsemble) -> dict[str, Any]:
    first = infos[0]
    temperature = None if objective.temperature is None else \
        (float(cfg.temperature) if cfg.temperature is not None else objective.temperature.start)
    return {
        "teacher_sha256": first.sha256,
        "teacher_path": first.path or first.ref,
        "teachers": [{"path": i.path, "ref": i.ref, "sha256": i.sha256, "weight": w}
                     for i, w in zip(infos, ensemble.weights)],
        "method": objective.method,
        "temperature": temperature,
        "hard_weight": float(cfg.hard_weight),
        "soft_weight": float(cfg.soft_weight),
        "feature_weight": float(cfg.feature_weight),
        "schedules": dict(cfg.schedules),
        "feature_pairs": [list(p) for p in cfg.feature_pairs],
        "feature_loss": cfg.feature_loss,
        "method_options": dict(cfg.method_options),
    }


def _baseline_result(baseline: BaselineRun, student: TrainedModel) -> tuple[TrainResult, TrainedModel]:
    fit = baseline.result
    history = [dict(h) for h in baseline.trainer.history]
    metrics = run_setup.metric_floats(history[-1]) if history else {}
    tm = dataclasses.replace(student, module=baseline.model, metrics=metrics, extra_metadata={},
                             trainer=baseline.trainer)
    return run_setup.train_result(fit, store.put(tm)), tm


def _compare(ensemble: TeacherEnsemble, infos: list[TeacherInfo], refs: list[str], student: TrainedModel,
             baseline: TrainedModel | None, teacher_metrics: dict[str, float], raw_x: torch.Tensor,
             raw_y: torch.Tensor, prep: data_lib.Preprocessing, device: torch.device
             ) -> tuple[tuple[dict[str, Any], ...], float | None]:
    """Rows for teacher, student and baseline on the validation split, and the gap closed (REQ-H24, KD22)."""
    task, names = student.task, tuple(student.class_names)
    size, latency, modules = 0, 0.0, []
    for i in ensemble.active:
        module, info = ensemble.teachers[i].module, infos[i]
        tprep = data_lib.Preprocessing.from_dict(info.preprocessing) if info.preprocessing else None
        size += Path(info.path).stat().st_size if info.path else \
            saved_size(lambda p, r=refs[i]: model_files.save_trained(p, store.get(r)))
        latency += measure_latency(module, tprep.apply(raw_x) if tprep else raw_x, device)
        modules.append(module)
    rows = [comparison_row("teacher", task, teacher_metrics, modules, size, latency)]
    scores = {"teacher": rows[0]}
    inputs = prep.apply(raw_x)
    for role, tm in (("student", student), ("baseline", baseline)):
        if tm is None:
            continue
        metrics = evaluate_on(tm.module, inputs, raw_y, task, names, prep.inverse_target)
        row = comparison_row(role, task, metrics, [tm.module],
                             saved_size(lambda p, t=tm: model_files.save_trained(p, t)),
                             measure_latency(tm.module, inputs, device))
        rows.append(row)
        scores[role] = row
    key, higher = ("mse", False) if task == "regression" else ("accuracy", True)
    gap = gap_closed(scores["teacher"][key], scores["student"][key], scores["baseline"][key],
                     higher_is_better=higher) if "baseline" in scores else None
    return tuple(rows), gap


# -- training checkpoints ---------------------------------------------------------------------------
def _trainable_model_params(trainer: Trainer) -> int:
    return sum(1 for p in trainer.model.parameters() if p.requires_grad)


def _split_optimizer(optimizer: torch.optim.Optimizer, n: int) -> tuple[torch.optim.Optimizer, dict | None]:
    """An optimiser over the first ``n`` parameters only (the student's) and the rest's state (the adapters')."""
    sd = optimizer.state_dict()
    ids = [i for g in sd["param_groups"] for i in g["params"]]
    if len(ids) == n:
        return optimizer, None
    student = {"state": {k: v for k, v in sd["state"].items() if k < n},
               "param_groups": [{**g, "params": [i for i in g["params"] if i < n]} for g in sd["param_groups"]]}
    rest = {"state": {k - n: v for k, v in sd["state"].items() if k >= n},
            "param_groups": [{**g, "params": [i - n for i in g["params"] if i >= n]} for g in sd["param_groups"]]}
    params = [p for g in optimizer.param_groups for p in g["params"]][:n]
    view = type(optimizer)(params, **optimizer.defaults)
    view.load_state_dict(student)
    return view, rest


def _join_optimizer(student: dict[str, Any], rest: dict[str, Any] | None, n: int) -> dict[str, Any]:
    if not rest:
        return student
    state = {int(k): v for k, v in student["state"].items()}
    state.update({int(k) + n: v for k, v in rest["state"].items()})
    groups = [{**g, "params": list(g["params"]) + [int(i) + n for i in r["params"]]}
              for g, r in zip(student["param_groups"], rest["param_groups"])]
    return {"state": state, "param_groups": groups}


def save_distill_checkpoint(path: str, tm: TrainedModel, trainer: Trainer) -> ser.FileInfo:
    """Write the run's training checkpoint (see the module docstring) atomically."""
    state = trainer.state_dict()
    state.pop("model")
    state.pop("optimizer")
    objective = state.pop("objective", None) or {}
    optimizer, rest = _split_optimizer(trainer.optimizer, _trainable_model_params(trainer))
    extra = {"trainer": state, "adapters": objective.get("adapters") or {}, "adapter_optimizer": rest,
             "baseline": objective.get("baseline"), "warned": objective.get("warned") or []}
    return ser.save_training_checkpoint(path, trainer.model, optimizer, extra, model_files.model_metadata(tm))


def _resume_metadata(path: str) -> dict[str, Any]:
    meta = ser.read_metadata(path)
    if meta.get("kind") != "training" or not isinstance(meta.get("distillation"), dict):
        raise CheckpointError(f"{Path(path).name!r} is not a training checkpoint of a distillation run, so it cannot "
                              "resume one.", code="checkpoint.incompatible", field="resume_from", value=str(path),
                              hint="Choose the file a distillation run saved (its checkpoint_path).")
    return meta


def _check_teachers_unchanged(meta: dict[str, Any], infos: list[TeacherInfo], path: str) -> None:
    recorded = meta["distillation"].get("teachers") or []
    if len(recorded) != len(infos):
        raise DistillError(f"The run in {Path(path).name!r} was distilled from {len(recorded)} teacher(s), this request "
                           f"names {len(infos)}.", code="distill.teacher_changed", field="teacher")
    for old, info in zip(recorded, infos):
        if old.get("sha256") != info.sha256:
            raise DistillError(
                f"The {info.describe()} has changed since the run in {Path(path).name!r} started (SHA-256 "
                f"{str(old.get('sha256'))[:12]}... then, {info.sha256[:12]}... now); resuming would mix two teachers.",
                code="distill.teacher_changed", field="teacher", value={"recorded": old.get("sha256"),
                                                                       "current": info.sha256},
                hint="Restore the original teacher file, or start a new distillation run.")


def _resume(trainer: Trainer, path: str, device: torch.device) -> None:
    model, state = ser.load_training_checkpoint(path, model_files.build_from_metadata, device, restore_rng=False)
    n = _trainable_model_params(trainer)
    trainer.load_state_dict({
        **state["trainer"],
        "model": model.state_dict(),
        "optimizer": _join_optimizer(state["optimizer_state_dict"], state.get("adapter_optimizer"), n),
        "objective": {"adapters": state.get("adapters") or {}, "baseline": state.get("baseline"),
                      "warned": state.get("warned") or []},
    })
