"""Studio: a desktop training studio for PyTorch."""

__version__ = "0.1.0"
