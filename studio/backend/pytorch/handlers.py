"""Registers the PyTorch backend's handlers (placeholder until the handler module lands)."""
