"""The built-in families; importing this package registers them."""

from studio.backend.pytorch.models.families import (  # noqa: F401
    cnn1d,
    lenet,
    linear,
    mlp,
    mobilenet,
    recurrent,
    resnet,
    transformer,
)
