"""The model zoo of the PyTorch backend (PT-MODELS-001).

Importing this package registers the built-in families: ``linear``, ``mlp``, ``lenet``,
``resnet``, ``mobilenet``, ``cnn1d``, ``gru``, ``lstm`` and ``transformer``.

- registry: :func:`register_model`, :func:`list_models`, :func:`model_names`, :func:`get_model_info`,
  :class:`Param` (alias ``HParam``)
- building: :func:`build_model`, :func:`resolve_hparams`, :func:`resolve_spec`, :func:`rebuild`
- inspection: :func:`count_parameters`, :func:`size_bytes`, :func:`estimate_macs`, :func:`layer_summary`,
  :func:`summarize_model`, :func:`list_presets` / :func:`preset_table`, :func:`describe_models`
- distillation and fine-tuning: :func:`feature_layers`, :func:`capture_features`, :func:`freeze`
- runtime: :func:`maybe_compile`, :func:`load_user_models`, :func:`check_compatibility`, :func:`check_model`
"""

from studio.backend.pytorch.models import families as _families  # noqa: F401  (registers the built-ins)
from studio.backend.pytorch.models.build import (
    as_spec,
    build_model,
    expand_spec,
    rebuild,
    resolve_hparams,
    resolve_spec,
)
from studio.backend.pytorch.models.checks import check_model
from studio.backend.pytorch.models.compat import Compatibility, check_compatibility, require_compatible
from studio.backend.pytorch.models.compile import CompileFallbackWarning, maybe_compile
from studio.backend.pytorch.models.defaults import default_model, default_student
from studio.backend.pytorch.models.docs import default_size, describe_model, describe_models
from studio.backend.pytorch.models.features import capture_features, feature_layers, feature_names
from studio.backend.pytorch.models.freeze import (
    ALL_BUT_HEAD,
    freeze,
    frozen_parameters,
    trainable_parameters,
    unfreeze,
)
from studio.backend.pytorch.models.heads import head_name
from studio.backend.pytorch.models.init import INIT_SCHEMES, apply_init, init_weights
from studio.backend.pytorch.models.plugins import load_user_models
from studio.backend.pytorch.models.presets import PresetInfo, list_presets, preset_table
from studio.backend.pytorch.models.registry import (
    INPUT_KINDS,
    TASKS,
    ModelInfo,
    get_model_info,
    list_models,
    model_names,
    register_model,
    unregister_model,
)
from studio.backend.pytorch.models.schema import HParam, Param, validate_hparams
from studio.backend.pytorch.models.shapes import dummy_input, input_kind_of
from studio.backend.pytorch.models.stats import count_parameters, estimate_macs, model_size_bytes, size_bytes
from studio.backend.pytorch.models.summary import layer_summary, summarize_model

__all__ = [
    "ALL_BUT_HEAD",
    "INIT_SCHEMES",
    "INPUT_KINDS",
    "TASKS",
    "Compatibility",
    "CompileFallbackWarning",
    "HParam",
    "ModelInfo",
    "Param",
    "PresetInfo",
    "apply_init",
    "as_spec",
    "build_model",
    "capture_features",
    "check_compatibility",
    "check_model",
    "count_parameters",
    "default_model",
    "default_size",
    "default_student",
    "describe_model",
    "describe_models",
    "dummy_input",
    "estimate_macs",
    "expand_spec",
    "feature_layers",
    "feature_names",
    "freeze",
    "frozen_parameters",
    "get_model_info",
    "head_name",
    "init_weights",
    "input_kind_of",
    "layer_summary",
    "list_models",
    "list_presets",
    "load_user_models",
    "maybe_compile",
    "model_names",
    "model_size_bytes",
    "preset_table",
    "rebuild",
    "register_model",
    "require_compatible",
    "resolve_hparams",
    "resolve_spec",
    "size_bytes",
    "summarize_model",
    "trainable_parameters",
    "unfreeze",
    "unregister_model",
    "validate_hparams",
]
