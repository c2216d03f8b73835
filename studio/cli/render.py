"""Results in plain words for people (``--json`` prints the result contracts instead)."""

from __future__ import annotations

from typing import Any

from studio.backend.core.formatting import format_bytes, format_count, format_duration
from studio.cli.progress import format_metrics

__all__ = ["training_summary", "evaluation", "predictions", "prediction_rows", "data_summary", "model_summary",
           "checkpoint", "catalogue"]


def _table(ctx: Any, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    ctx.out("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in rows:
        ctx.out("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _split(record: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    train = {k[len("train_"):]: v for k, v in record.items() if k.startswith("train_")}
    val = {k[len("val_"):]: v for k, v in record.items() if k.startswith("val_")}
    return train, val


def training_summary(ctx: Any, operation: str, result: Any, train: Any) -> None:
    took = format_duration(train.duration_s)
    if train.status == "cancelled":
        ctx.out(f"Stopped at step {train.steps}, after {train.epochs_run} complete epochs, in {took}.")
    else:
        ctx.out(f"Finished {train.epochs_run} epochs ({train.steps} steps) in {took}.")
    tr, val = _split(train.final_metrics)
    if tr:
        ctx.out(f"  last epoch: {format_metrics(tr, 'train_', 2)}" + (f"  {format_metrics(val, 'val_', 2)}" if val else ""))
    if train.best_epoch >= 0 and train.best_metrics:
        tr, val = _split(train.best_metrics)
        ctx.out(f"  best epoch {train.best_epoch + 1}: " + format_metrics(val or tr, "val_" if val else "train_", 2))
    if operation == "distill" and getattr(result, "teacher_metrics", None):
        ctx.out(f"  teacher: {format_metrics(result.teacher_metrics)}")
        if result.gap_closed is not None:
            ctx.out(f"  gap to the teacher closed: {result.gap_closed:.0%}")


def evaluation(ctx: Any, result: Any, data: Any) -> None:
    ctx.out(f"{result.split} split of {data.name}: {result.num_samples} samples")
    ctx.out("  " + format_metrics(result.metrics))
    if result.per_class:
        keys = [k for k in result.per_class[0] if k != "class"]
        rows = [[str(r.get("class", "")), *(_cell(r.get(k)) for k in keys)] for r in result.per_class]
        ctx.out("")
        _table(ctx, rows, ["class", *keys])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _row_names(result: Any) -> list[str]:
    count = len(result.values) if result.task == "regression" else len(result.labels)
    return list(result.names) if len(result.names) == count else [str(i) for i in range(count)]


def predictions(ctx: Any, result: Any) -> None:
    """One line per input, in input order, starting with the input's name (an image's path relative to
    the folder, ``line N`` of a CSV file, ``row i``)."""
    names = _row_names(result)
    if result.task == "regression":
        for name, row in zip(names, result.values):
            ctx.out(f"{name}\t" + "\t".join(f"{v:.6g}" for v in row))
        return
    if result.top_k:
        for name, top in zip(names, result.top_k):
            ctx.out(f"{name}\t" + "\t".join(f"{label} {p:.3f}" for label, p in top))
        return
    for name, label, probs in zip(names, result.labels, result.probabilities):
        ctx.out(f"{name}\t{label}\t" + " ".join(f"{p:.3f}" for p in probs))


def prediction_rows(result: Any) -> list[list[str]]:
    """The predictions as CSV rows, header first: the input, the predicted label and its probability, then
    the probability of every class (regression: the input and each predicted value)."""
    names = _row_names(result)
    if result.task == "regression":
        width = len(result.values[0]) if result.values else 1
        header = ["input", *(["value"] if width == 1 else [f"value_{i}" for i in range(width)])]
        return [header, *([name, *(repr(float(v)) for v in row)] for name, row in zip(names, result.values))]
    width = len(result.probabilities[0]) if result.probabilities else 0
    classes = list(result.class_names) or [str(i) for i in range(width)]
    rows = [["input", "label", "probability", *(f"p_{c}" for c in classes)]]
    for name, index, label, probs in zip(names, result.indices, result.labels, result.probabilities):
        rows.append([name, label, repr(float(probs[index])), *(repr(float(p)) for p in probs)])
    return rows


def data_summary(ctx: Any, s: Any) -> None:
    ctx.out(f"{s.name}: {s.task} on {s.input_kind} inputs of shape {tuple(s.input_shape)}, {s.num_samples} samples, "
            f"{s.num_outputs} outputs")
    if s.description:
        ctx.out(f"  {s.description}")
    if s.image_size_note:
        ctx.out(f"  {s.image_size_note}")
    if s.split_sizes:
        ctx.out("  splits: " + ", ".join(f"{k} {v}" for k, v in s.split_sizes.items()))
    if s.class_names:
        counts = s.class_counts or (None,) * len(s.class_names)
        ctx.out("  classes: " + ", ".join(f"{n} ({c})" if c is not None else n for n, c in zip(s.class_names, counts)))
    if s.feature_names:
        ctx.out("  features: " + ", ".join(s.feature_names))


def model_summary(ctx: Any, s: Any, data: Any) -> None:
    ctx.out(f"{s.name} on {data.name}: {format_count(s.params_total)} parameters "
            f"({format_count(s.params_trainable)} trainable), {format_bytes(s.size_bytes)}, "
            f"{format_count(s.macs)} multiply-adds per sample")
    if s.layers:
        rows = [["  " * (int(layer.get("depth", 1)) - 1) + str(layer.get("name", "")), str(layer.get("type", "")),
                 str(tuple(layer.get("output_shape", ()))), format_count(int(layer.get("params", 0)))]
                for layer in s.layers]
        ctx.out("")
        _table(ctx, rows, ["layer", "type", "output", "params"])


def checkpoint(ctx: Any, loaded: Any) -> None:
    meta = loaded.metadata
    model = meta.get("model", {})
    spec = model.get("spec", {})
    ctx.out(f"{loaded.path} ({format_bytes(loaded.size_bytes)})")
    ctx.out(f"  model: {spec.get('name')} {spec.get('hparams') or ''}  inputs {tuple(model.get('input_shape', ()))}, "
            f"{model.get('num_outputs')} outputs, task {meta.get('task')}")
    data = meta.get("data") or {}
    if data:
        ctx.out(f"  trained on: {data.get('name')} ({data.get('source')})")
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if k not in ("epoch", "step", "lr")}
    if metrics:
        ctx.out("  metrics: " + format_metrics(metrics))
    if meta.get("class_names"):
        ctx.out("  classes: " + ", ".join(map(str, meta["class_names"])))


def catalogue(ctx: Any, cat: Any) -> None:
    ctx.out("datasets:")
    _table(ctx, [[d["name"], d["task"], d["input_kind"]] for d in cat.datasets], ["name", "task", "inputs"])
    ctx.out("\nmodels (studio train --model NAME --help lists a model's flags):")
    _table(ctx, [[m["name"], ",".join(m.get("input_kinds", ())), ",".join(m.get("presets", {})),
                  " ".join(f"--{p['name'].replace('_', '-')}" for p in m.get("schema", ()))] for m in cat.models],
           ["name", "inputs", "presets", "hyperparameter flags"])
    if cat.devices:
        ctx.out("\ndevices:")
        _table(ctx, [[d["id"], d["name"], format_bytes(d["total_memory_bytes"]) if d.get("total_memory_bytes") else ""]
                     for d in cat.devices], ["id", "name", "memory"])
