"""Distillation losses as plain functions on tensors, and their registry (REQ-KD01, KD06-KD08, KD11-KD14, KD16).

Every function takes the student's tensors first and the teacher's second, needs no module or
trainer, and returns a 0-dim tensor (a batch mean). Log-probabilities come from ``log_softmax`` /
``logsumexp`` on both sides, never from the logarithm of a softmax, so logits of any magnitude give
finite losses and gradients. The T^2 factor of the soft losses lives inside :func:`kd_loss` and
:func:`dkd_loss`, so no caller can omit or double it. Each docstring's ``Formula:`` block is the
formula the registry reports (``get_loss(name).formula``) and ``specs/PT-DISTILL-001.md`` documents.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from studio.backend.core.errors import DistillError, ValidationError

__all__ = [
    "LossInfo",
    "TemperatureWarning",
    "attention_map",
    "attention_transfer_loss",
    "check_temperature",
    "debug_checks",
    "dkd_loss",
    "dkd_terms",
    "get_loss",
    "hint_cosine_loss",
    "hint_mse_loss",
    "kd_loss",
    "kl_from_log_probs",
    "list_losses",
    "register_loss",
    "regression_distill_loss",
    "USUAL_TEMPERATURES",
]

USUAL_TEMPERATURES = (1.0, 20.0)
_DEBUG = os.environ.get("STUDIO_DISTILL_CHECKS", "") == "1"


class TemperatureWarning(UserWarning):
    """A temperature outside the usual range [1, 20] was used."""


def debug_checks(enabled: bool | None = None) -> bool:
    """Turn the argument checks of :func:`kl_from_log_probs` on or off; returns the previous setting.

    ``None`` only reads it. On by default when ``STUDIO_DISTILL_CHECKS=1`` (the test suite turns it on)."""
    global _DEBUG
    previous = _DEBUG
    if enabled is not None:
        _DEBUG = bool(enabled)
    return previous


def check_temperature(temperature: Any, *, field: str = "distill.temperature", warn: bool = True) -> float:
    """The temperature as a float; ``ValidationError`` unless finite and above zero.

    With ``warn``, a value outside [1, 20] gives a :class:`TemperatureWarning` (allowed, but unusual)."""
    ok = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if not ok or not math.isfinite(temperature) or temperature <= 0:
        raise ValidationError(
            f"The temperature must be a finite number above zero, not {temperature!r}.",
            field=field, value=temperature if ok else repr(temperature),
            hint="Use a value from 1 to 20; 4 is a good start.",
        )
    low, high = USUAL_TEMPERATURES
    if warn and not low <= temperature <= high:
        warnings.warn(f"The temperature {temperature:g} is outside the usual range [{low:g}, {high:g}].",
                      TemperatureWarning, stacklevel=3)
    return float(temperature)


def _pair(student: torch.Tensor, teacher: torch.Tensor, what: str) -> None:
    if student.shape != teacher.shape:
        raise DistillError(f"The student's {what} are shaped {tuple(student.shape)} but the teacher's "
                           f"{tuple(teacher.shape)}; they must match.", code="distill.incompatible",
                           field=what, value=[list(student.shape), list(teacher.shape)])


def _check_log_probs(t: torch.Tensor, which: str) -> None:
    with torch.no_grad():
        worst = float((torch.logsumexp(t.float(), dim=-1)).abs().max()) if t.numel() else 0.0
    if not worst <= 1e-4:
        raise ValueError(f"kl_from_log_probs: the {which} rows are not log-probabilities (logsumexp is off by "
                         f"{worst:.3g}); pass log_softmax outputs, not probabilities or logits.")


def kl_from_log_probs(student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor) -> torch.Tensor:
    """``KL(teacher || student)`` with ``batchmean`` from log-probabilities on both sides (rows: samples).

    The student's log-probabilities are the input and the teacher's the target, in that order.
    With :func:`debug_checks` on, each row's ``logsumexp`` must be 0 within 1e-4 (``ValueError`` otherwise).

    Formula:
        KL(p_t || q_s) = (1/B) * sum_b sum_c p_t[b,c] * (log p_t[b,c] - log q_s[b,c])
    """
    _pair(student_log_probs, teacher_log_probs, "log-probabilities")
    if _DEBUG:
        _check_log_probs(student_log_probs, "student")
        _check_log_probs(teacher_log_probs, "teacher")
    return F.kl_div(student_log_probs.float(), teacher_log_probs.float(), reduction="batchmean", log_target=True)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float,
            warn: bool = True) -> torch.Tensor:
    """Hinton knowledge distillation: the softened teacher distribution as the student's target.

    Formula:
        L_kd(s, t; T) = T^2 * KL(softmax(t/T) || softmax(s/T))
                      = T^2 * (1/B) * sum_b sum_c p_t[b,c] * (log p_t[b,c] - log q_s[b,c]),
        p_t = softmax(t/T), log p_t = log_softmax(t/T), log q_s = log_softmax(s/T)
    """
    T = check_temperature(temperature, warn=warn)
    _pair(student_logits, teacher_logits, "logits")
    log_q = F.log_softmax(student_logits.float() / T, dim=-1)
    log_p = F.log_softmax(teacher_logits.float() / T, dim=-1)
    return (T * T) * kl_from_log_probs(log_q, log_p)


def _non_target(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The C-1 non-target entries of each row, gathered in class order (no masking constant)."""
    b, c = z.shape
    keep = torch.arange(c, device=z.device).expand(b, c) != labels.reshape(-1, 1)
    return z[keep].reshape(b, c - 1)


def _binary_log_probs(z: torch.Tensor, labels: torch.Tensor, non_target: torch.Tensor) -> torch.Tensor:
    """``[log p_g, log(1 - p_g)]`` per row, both from logsumexp."""
    total = torch.logsumexp(z, dim=-1)
    log_pg = z.gather(1, labels.reshape(-1, 1)).squeeze(1) - total
    log_rest = torch.logsumexp(non_target, dim=-1) - total
    return torch.stack((log_pg, log_rest), dim=1)


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
              temperature: float, warn: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(TCKD, NCKD)`` of decoupled KD (shape ``(B,)`` each), without T^2 or weights."""
    T = check_temperature(temperature, warn=warn)
    _pair(student_logits, teacher_logits, "logits")
    if labels.shape != student_logits.shape[:1]:
        raise DistillError(f"Decoupled KD needs one class index per sample; got labels {tuple(labels.shape)} for "
                           f"logits {tuple(student_logits.shape)}.", code="distill.incompatible", field="labels")
    labels = labels.long()
    zs, zt = student_logits.float() / T, teacher_logits.float() / T
    ns, nt = _non_target(zs, labels), _non_target(zt, labels)
    bs, bt = _binary_log_probs(zs, labels, ns), _binary_log_probs(zt, labels, nt)
    tckd = (bt.exp() * (bt - bs)).sum(dim=1)
    if ns.shape[1] == 0:
        return tckd, torch.zeros_like(tckd)
    ls, lt = F.log_softmax(ns, dim=-1), F.log_softmax(nt, dim=-1)
    nckd = (lt.exp() * (lt - ls)).sum(dim=1)
    return tckd, nckd


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
             temperature: float, target_weight: float = 1.0, nontarget_weight: float = 8.0,
             warn: bool = True) -> torch.Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022): target-class and non-target-class terms weighed apart.

    Formula:
        b = [p_g, 1 - p_g] (target class g vs the rest, at temperature T), p~ = softmax(z_{\\g} / T)
        TCKD = KL(b_t || b_s)        NCKD = KL(p~_t || q~_s)        (each a mean over the batch)
        L_dkd = T^2 * (target_weight * TCKD + nontarget_weight * NCKD)
        log p_g = log_softmax(z)[g],  log(1 - p_g) = logsumexp(z_{\\g}) - logsumexp(z)
    """
    tckd, nckd = dkd_terms(student_logits, teacher_logits, labels, temperature=temperature, warn=warn)
    T = float(temperature)
    return (T * T) * (float(target_weight) * tckd.mean() + float(nontarget_weight) * nckd.mean())


def hint_mse_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """FitNets-style hint: mean squared difference of the (adapted) student feature and the teacher's.

    Formula:
        L_hint_mse = mean over all elements of (A(F_s) - F_t)^2
    """
    _pair(student_feature, teacher_feature, "features")
    return F.mse_loss(student_feature.float(), teacher_feature.float())


def hint_cosine_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """Hint by direction: one minus the cosine similarity of each sample's flattened features.

    Formula:
        L_hint_cos = (1/B) * sum_b (1 - cos(vec(A(F_s)_b), vec(F_t_b)))
    """
    _pair(student_feature, teacher_feature, "features")
    s, t = student_feature.float().flatten(1), teacher_feature.float().flatten(1)
    return (1.0 - F.cosine_similarity(s, t, dim=1, eps=1e-8)).mean()


def attention_map(feature: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """``a(F)``: the channel mean of squared activations, flattened per sample and L2-normalised."""
    if feature.dim() != 4:
        raise DistillError(f"Attention transfer needs convolutional feature maps (B, C, H, W), not a tensor shaped "
                           f"{tuple(feature.shape)}; pick convolutional layers or use a hint loss.",
                           code="distill.incompatible", field="feature_pairs", value=list(feature.shape))
    q = feature.float().pow(2).mean(dim=1).flatten(1)
    return q / q.norm(dim=1, keepdim=True).clamp_min(eps)


def attention_transfer_loss(student_map: torch.Tensor, teacher_map: torch.Tensor, *,
                            eps: float = 1e-12) -> torch.Tensor:
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017); channel counts may differ.

    Formula:
        Q(F)[b] = vec( (1/C) * sum_c |F[b,c]|^2 )        a(F)[b] = Q(F)[b] / max(||Q(F)[b]||_2, eps)
        L_at = (1/B) * sum_b || a(F_s)[b] - a(F_t)[b] ||_2
        (the student map is average-pooled to the teacher's H x W first)
    """
    a_t = attention_map(teacher_map, eps=eps)
    if student_map.dim() == 4 and student_map.shape[-2:] != teacher_map.shape[-2:]:
        student_map = F.adaptive_avg_pool2d(student_map, teacher_map.shape[-2:])
    a_s = attention_map(student_map, eps=eps)
    if a_s.shape[0] != a_t.shape[0]:
        raise DistillError(f"Attention maps of {a_s.shape[0]} and {a_t.shape[0]} samples cannot be compared.",
                           code="distill.incompatible", field="feature_pairs")
    return (a_s - a_t).norm(dim=1).mean()


RegressionKind = Literal["mse", "l1", "huber"]


def regression_distill_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, *,
                            kind: RegressionKind = "mse", delta: float = 1.0) -> torch.Tensor:
    """Regression distillation on the (scaled) outputs: no softmax and no temperature.

    Formula:
        r = s - t, averaged over samples and outputs:
        MSE: r^2        L1: |r|        Huber_delta: 0.5 r^2 if |r| <= delta, else delta (|r| - 0.5 delta)
    """
    _pair(student_out, teacher_out, "outputs")
    s, t = student_out.float(), teacher_out.float()
    if kind == "mse":
        return F.mse_loss(s, t)
    if kind == "l1":
        return F.l1_loss(s, t)
    if kind == "huber":
        if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
            raise ValidationError(f"The Huber delta must be a number above zero, not {delta!r}.",
                                  field="distill.method_options.delta", value=delta)
        return F.huber_loss(s, t, delta=float(delta))
    raise ValidationError(f"Unknown regression distillation loss {kind!r}; use mse, l1 or huber.",
                          field="distill.method_options.kind", value=kind)


# -- the registry ----------------------------------------------------------------------------

LossKind = Literal["logits", "regression", "feature"]


@dataclass(frozen=True)
class LossInfo:
    """A registered loss: ``fn`` is the plain function, ``formula`` its formula as text, ``kind`` what it
    compares: ``logits`` (classification outputs), ``regression`` (outputs) or ``feature`` (layers)."""

    name: str
    fn: Callable[..., torch.Tensor]
    formula: str
    kind: str


_LOSSES: dict[str, LossInfo] = {}


def register_loss(name: str, fn: Callable[..., torch.Tensor], *, formula: str, kind: LossKind = "logits") -> LossInfo:
    """Add a loss under ``name`` (replacing none: a taken name is ``request.invalid``)."""
    if not isinstance(name, str) or not name or name in _LOSSES:
        raise ValidationError(f"A distillation loss needs a new, non-empty name; {name!r} is taken or empty.",
                              field="name", value=name)
    if not callable(fn) or not isinstance(formula, str) or not formula.strip():
        raise ValidationError(f"The loss {name!r} needs a function and a non-empty formula.", field="formula")
    if kind not in ("logits", "regression", "feature"):
        raise ValidationError(f"The loss kind must be logits, regression or feature, not {kind!r}.", field="kind")
    info = LossInfo(name, fn, formula.strip(), kind)
    _LOSSES[name] = info
    return info


def get_loss(name: str) -> LossInfo:
    """The registered loss ``name``; an unknown name is ``request.invalid`` listing the known ones."""
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ValidationError(f"There is no distillation loss {name!r}; choose one of {', '.join(list_losses())}.",
                              field="distill.method", value=name) from None


def list_losses() -> tuple[str, ...]:
    return tuple(sorted(_LOSSES))


def formula_of(fn: Callable[..., Any]) -> str:
    """The indented ``Formula:`` block of ``fn``'s docstring."""
    lines = (fn.__doc__ or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Formula:") + 1
    block = [line for line in lines[start:] if line.strip()]
    indent = min(len(line) - len(line.lstrip()) for line in block)
    return "\n".join(line[indent:].rstrip() for line in block)


for _name, _fn, _kind in (
    ("kd", kd_loss, "logits"),
    ("dkd", dkd_loss, "logits"),
    ("hint-mse", hint_mse_loss, "feature"),
    ("hint-cosine", hint_cosine_loss, "feature"),
    ("attention", attention_transfer_loss, "feature"),
    ("regression", regression_distill_loss, "regression"),
):
    register_loss(_name, _fn, formula=formula_of(_fn), kind=_kind)  # type: ignore[arg-type]
