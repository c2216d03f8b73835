"""The PyTorch backend's handlers (REQ-H01): one function per operation, registered by :func:`register`.

Every handler checks the type of its request, validates before doing any work, reports
progress through the event sink, and lets only :class:`StudioError` out (REQ-H11).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from studio.backend.core.errors import CheckpointError, ValidationError
from studio.backend.core.handler import EventSink, RunControl
from studio.backend.core.registry import HandlerRegistry
from studio.backend.core.requests import (
    CatalogueRequest,
    EvaluateRequest,
    ExportRequest,
    InspectDataRequest,
    InspectModelRequest,
    LoadRequest,
    PredictRequest,
    ReleaseRequest,
    SaveRequest,
    TrainRequest,
)
from studio.backend.core.results import (
    Catalogue,
    DataSummary,
    EvaluateResult,
    ExportResult,
    FileResult,
    LoadResult,
    ModelSummary,
    PredictResult,
    ReleaseResult,
    TrainResult,
)
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import model_files
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch import serialization as ser
from studio.backend.pytorch.deploy import export_trained
from studio.backend.pytorch.distill import distill
from studio.backend.pytorch.environment import environment
from studio.backend.pytorch.evaluation import evaluate_outputs
from studio.backend.pytorch.image_size import image_size_for
from studio.backend.pytorch.inference import probabilities, run_model
from studio.backend.pytorch.model_store import TrainedModel, store
from studio.backend.pytorch.predict_inputs import inputs_to_tensor
from studio.backend.pytorch.run_setup import (
    EpochCheckpoint,
    checkpoint_interval,
    handler_errors,
    metric_floats,
    prepare_data,
    require_request,
    train_result,
)
from studio.backend.pytorch.runtime import apply_runtime, describe_devices, resolve_device
from studio.backend.pytorch.serialization.atomic import check_target
from studio.backend.pytorch.trainer import Trainer

__all__ = ["register", "warm_up", "catalogue", "train", "evaluate", "predict", "save", "load", "export",
           "inspect_data", "inspect_model", "release", "resolve_model"]

@handler_errors("catalogue")
def catalogue(request: CatalogueRequest | None = None, **_: Any) -> Catalogue:
    """Datasets, models, devices and the named choices of the training configuration."""
    request = request if request is not None else CatalogueRequest()
    require_request(request, CatalogueRequest)
    from studio.backend.pytorch import trainer as trainer_lib

    datasets = tuple({"name": n, "description": d, "task": t, "input_kind": k}
                     for n, d, t, k in data_lib.builtin_datasets())
    models = tuple(info.to_dict() for info in model_lib.list_models())
    devices = tuple(d.to_dict() for d in describe_devices()) if request.include_devices else ()
    choices = {
        "sources": tuple(data_lib.SOURCES),
        "optimizers": tuple(trainer_lib.OPTIMIZERS),
        "schedules": tuple(trainer_lib.SCHEDULES),
        "precisions": tuple(trainer_lib.PRECISIONS),
        "init": tuple(model_lib.INIT_SCHEMES),
    }
    return Catalogue(datasets=datasets, models=models, devices=devices, choices=choices)


@handler_errors("inspect_data")
def inspect_data(request: InspectDataRequest, **_: Any) -> DataSummary:
    require_request(request, InspectDataRequest)
    data_lib.validate_fractions(request.data.val_fraction, request.data.test_fraction)
    data, size_note = image_size_for(request.data, request.model)
    bundle = data_lib.load_data(data)
    splits = data_lib.split_data(bundle, data.val_fraction, data.test_fraction, data.seed)
    summary = data_lib.summarize(bundle, splits, request.preview_rows, tuple(request.indices))
    return dataclasses.replace(summary, image_size_note=size_note)


@handler_errors("inspect_model")
def inspect_model(request: InspectModelRequest, **_: Any) -> ModelSummary:
    require_request(request, InspectModelRequest)
    bundle = data_lib.load_data(image_size_for(request.data, request.model)[0])
    model_lib.require_compatible(request.model, bundle.input_kind, bundle.task)
    return model_lib.summarize_model(request.model, tuple(bundle.input_shape), int(bundle.num_outputs))


@handler_errors("train")
def train(request: TrainRequest, *, events: EventSink | None = None, control: RunControl | None = None) -> TrainResult:
    """Train ``request.model`` on ``request.data`` (REQ-H05); progress as events (REQ-H13).

    ``resume_from`` continues a training checkpoint exactly (REQ-T13); ``continue_from`` extends
    a run held in memory to ``config.epochs`` epochs; ``checkpoint_path`` autosaves a training
    checkpoint after every epoch (atomically, so a crash keeps the last complete epoch).
    """
    require_request(request, TrainRequest)
    data_lib.validate_fractions(request.data.val_fraction, request.data.test_fraction)
    if request.resume_from and request.continue_from:
        raise ValidationError("Give either resume_from (a file) or continue_from (a model), not both.",
                              field="resume_from")
    if request.checkpoint_path:
        check_target(request.checkpoint_path, suffixes=(".safetensors",))
    interval = checkpoint_interval(request.checkpoint_interval_s)
    device = apply_runtime(request.runtime)
    previous = _previous_run(request, device)
    data_spec = image_size_for(request.data, request.model, previous.input_shape if previous is not None else None)[0]
    request = dataclasses.replace(request, data=data_spec)  # the size chosen is recorded with the model
    data = prepare_data(request.data, lambda b: model_lib.require_compatible(request.model, b.input_kind, b.task))
    bundle = data.bundle
    tm = TrainedModel(
        module=None, spec=request.model, input_shape=tuple(bundle.input_shape),  # type: ignore[arg-type]
        num_outputs=int(bundle.num_outputs), task=bundle.task, class_names=tuple(bundle.class_names),
        preprocessing=data.prep.to_dict(), data=request.data, config=request.config,
    )
    callbacks = [EpochCheckpoint(request.checkpoint_path, lambda path: model_files.save_trained(
        path, tm, training_state=True), interval)] if request.checkpoint_path else []
    augmenter = data_lib.augmenter_from_spec(request.data.augment, bundle.input_kind, request.data.options)
    augment = augmenter.seeded(request.runtime.seed) if augmenter is not None else None  # training batches only
    if previous is not None:
        _check_fits(previous, bundle)
        trainer = model_files.trainer_for(previous, request.config, events=events, control=control, device=device,
                                          callbacks=callbacks, augment=augment)
    else:
        module = model_lib.build_model(request.model, tuple(bundle.input_shape), int(bundle.num_outputs),
                                       seed=request.runtime.seed)
        trainer = Trainer(module, bundle.task, request.config, events=events, control=control,
                          device=device, seed=request.runtime.seed, callbacks=callbacks, augment=augment)
    tm.module, tm.trainer = trainer.model, trainer
    fit = trainer.fit(data.train_xy, data.val_xy)
    tm.metrics = metric_floats(fit.final_metrics)
    return train_result(fit, store.put(tm))


def _previous_run(request: TrainRequest, device: torch.device) -> TrainedModel | None:
    if request.resume_from:
        return model_files.load_trained(request.resume_from, device)
    if request.continue_from:
        return resolve_model(request.continue_from)
    return None


def resolve_model(ref: str) -> TrainedModel:
    """A model handle from train/load, or the path of a checkpoint to load."""
    if isinstance(ref, str) and ref not in store and ref.endswith(".safetensors") and Path(ref).exists():
        return model_files.load_trained(ref)
    return store.get(ref)


@handler_errors("save")
def save(request: SaveRequest, **_: Any) -> FileResult:
    """Write a model (or training) checkpoint atomically and report path and size (REQ-H15)."""
    require_request(request, SaveRequest)
    check_target(request.path, suffixes=(".safetensors",))
    tm = resolve_model(request.model)
    info = model_files.save_trained(request.path, tm, training_state=request.training_state)
    extra: dict[str, Any] = {"training_state": request.training_state}
    if request.model_card:
        card = ser.write_model_card(info.path)
        extra.update(card_path=card.path, card_size_bytes=card.size_bytes)
    return FileResult(path=info.path, size_bytes=info.size_bytes, extra=extra)


@handler_errors("load")
def load(request: LoadRequest, **_: Any) -> LoadResult:
    """Load a checkpoint onto a device (REQ-H15, REQ-S09); never unpickles (REQ-S03)."""
    require_request(request, LoadRequest)
    device = resolve_device(request.device)
    if request.import_state_dict:
        if not request.into:
            raise ValidationError("Importing a .pt state dict needs the model to load it into (into=<model>).",
                                  field="into")
        target = resolve_model(request.into)
        weights = ser.import_state_dict(request.path)
        module = model_files.build_from_metadata(model_files.model_metadata(target)["model"])
        try:
            module.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"The weights in {request.path} do not fit the {target.spec.name} model: {exc}",
                                  code="checkpoint.mismatch", field="path", value=request.path) from exc
        tm = TrainedModel(module=module.to(device).eval(), spec=target.spec, input_shape=target.input_shape,
                          num_outputs=target.num_outputs, task=target.task, class_names=target.class_names,
                          preprocessing=target.preprocessing, data=target.data, config=target.config,
                          source_path=request.path)
    else:
        tm = model_files.load_trained(request.path, device)
    handle = store.put(tm)
    return LoadResult(model=handle, path=str(Path(request.path).resolve()), size_bytes=Path(request.path).stat().st_size,
                      metadata=model_files.model_metadata(tm))


@handler_errors("export")
def export(request: ExportRequest, **_: Any) -> ExportResult:
    """TorchScript or ONNX taking raw inputs (or the bare network), checked against the live model (REQ-T23)."""
    require_request(request, ExportRequest)
    return export_trained(resolve_model(request.model), request)


def _check_fits(model: TrainedModel, bundle: data_lib.DataBundle) -> None:
    ours = (tuple(model.input_shape), int(model.num_outputs), model.task)
    theirs = (tuple(bundle.input_shape), int(bundle.num_outputs), bundle.task)
    if ours != theirs:
        raise ValidationError(
            f"The model expects inputs {ours[0]} with {ours[1]} outputs for {ours[2]}, but the data "
            f"{bundle.name!r} gives {theirs[0]} with {theirs[1]} outputs for {theirs[2]}.",
            code="data.mismatch", field="data", hint="Choose the data the model was trained on.",
        )


@handler_errors("evaluate")
def evaluate(request: EvaluateRequest, **_: Any) -> EvaluateResult:
    """Metrics of a model on a split (REQ-H06), with the training preprocessing."""
    require_request(request, EvaluateRequest)
    if request.split not in ("train", "val", "test"):
        raise ValidationError(f"split must be train, val or test, not {request.split!r}.", field="split",
                              value=request.split)
    model = resolve_model(request.model)
    bundle = data_lib.load_data(image_size_for(request.data, model.spec, tuple(model.input_shape))[0])
    _check_fits(model, bundle)
    splits = data_lib.split_data(bundle, request.data.val_fraction, request.data.test_fraction, request.data.seed)
    idx = splits.get(request.split)
    if len(idx) == 0:
        raise ValidationError(f"The {request.split} split is empty; give it a fraction above zero.",
                              field=f"data.{request.split}_fraction")
    prep = data_lib.Preprocessing.from_dict(model.preprocessing)
    outputs = run_model(model.module, data_lib.split_inputs(bundle, idx, prep), request.batch_size)  # type: ignore[arg-type]
    if model.task == "regression":
        outputs = prep.inverse_target(outputs)
    ev = evaluate_outputs(model.task, outputs, bundle.y[idx], tuple(model.class_names))
    samples: dict[str, Any] = {}
    if model.task in ("classification", "binary") and ev.predicted:
        y = bundle.y[idx]
        true = y.long() if model.task == "classification" else (y.reshape(-1) > 0.5).long()
        samples = {"sample_indices": tuple(int(i) for i in idx.tolist()), "targets": tuple(true.tolist()),
                   "predicted": tuple(int(p) for p in ev.predicted), "confidence": tuple(map(float, ev.confidence))}
    return EvaluateResult(split=request.split, num_samples=len(idx), metrics=ev.metrics, per_class=ev.per_class,
                          confusion=ev.confusion, class_names=ev.class_names, **samples)


@handler_errors("predict")
def predict(request: PredictRequest, **_: Any) -> PredictResult:
    """Predictions in input order (REQ-H07, REQ-T17..T21)."""
    require_request(request, PredictRequest)
    if isinstance(request.top_k, bool) or not isinstance(request.top_k, int) or request.top_k < 1:
        raise ValidationError(f"top_k must be a whole number above zero, not {request.top_k!r}.", field="top_k",
                              value=request.top_k)
    model = resolve_model(request.model)
    prep = data_lib.Preprocessing.from_dict(model.preprocessing)
    x, sample_names = inputs_to_tensor(request.inputs, tuple(model.input_shape), dict(prep.encoding))
    row_names = tuple(sample_names)
    outputs = run_model(model.module, prep.apply(x), request.batch_size)
    if model.task == "regression":
        values = prep.inverse_target(outputs)
        return PredictResult(task=model.task, values=tuple(tuple(map(float, row)) for row in values.tolist()),
                             names=row_names)
    probs = probabilities(model.task, outputs)
    names = tuple(model.class_names) or tuple(str(i) for i in range(outputs.shape[1]))
    if model.task == "binary":
        p1 = probs.reshape(-1)
        probs = torch.stack([1 - p1, p1], dim=1)
        names = names if len(names) == 2 else ("negative", "positive")
    if model.task == "multilabel":
        indices = tuple(int(i) for i in probs.argmax(1).tolist())
        return PredictResult(task=model.task, indices=indices, labels=tuple(names[i] for i in indices),
                             probabilities=tuple(tuple(map(float, r)) for r in probs.tolist()), names=row_names,
                             class_names=names)
    k = min(request.top_k, probs.shape[1])
    top_p, top_i = probs.topk(k, dim=1)
    indices = tuple(int(i) for i in top_i[:, 0].tolist())
    return PredictResult(
        task=model.task, indices=indices, labels=tuple(names[i] for i in indices),
        probabilities=tuple(tuple(map(float, r)) for r in probs.tolist()),
        top_k=tuple(tuple((names[i], float(p)) for i, p in zip(ri, rp)) for ri, rp in
                    zip(top_i.tolist(), top_p.tolist())),
        names=row_names, class_names=names,
    )


@handler_errors("release")
def release(request: ReleaseRequest, **_: Any) -> ReleaseResult:
    """Forget models of the session (the window's "Forget hidden runs"); their memory is freed."""
    require_request(request, ReleaseRequest)
    handles = request.models
    if isinstance(handles, str) or not all(isinstance(h, str) for h in handles):
        raise ValidationError(f"models must be a list of model handles such as ['model-3'], not {handles!r}.",
                              field="models", value=repr(handles))
    released, unknown = [], []
    for handle in dict.fromkeys(handles):
        (released if store.drop(handle) else unknown).append(handle)
    return ReleaseResult(released=tuple(released), unknown=tuple(unknown))


def warm_up() -> None:
    """Pay first-use costs early (the first optimiser imports ``torch._dynamo``)."""
    param = torch.nn.Parameter(torch.zeros(1))
    torch.optim.Adam([param]).step()


HANDLERS: dict[str, Callable[..., Any]] = {
    "catalogue": catalogue,
    "inspect_data": inspect_data,
    "inspect_model": inspect_model,
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "save": save,
    "load": load,
    "export": export,
    "distill": distill,
    "release": release,
    "environment": handler_errors("environment")(environment),
}


def register(registry: HandlerRegistry) -> None:
    for operation, handler in HANDLERS.items():
        registry.register("pytorch", operation, handler)
