"""Which of Studio's optional extras (``pip install studio[export]`` ...) are installed, from its metadata."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

__all__ = ["extras", "installed_version"]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def extras(distribution: str = "studio") -> list[dict[str, Any]]:
    """One entry per extra: its packages with the installed version (None when absent) and ``installed``."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    found: dict[str, dict[str, str | None]] = {}
    for line in requires:
        requirement, _, marker = line.partition(";")
        extra, name = _EXTRA.search(marker), _NAME.match(requirement)
        if extra and name:
            found.setdefault(extra.group(1), {})[name.group(1)] = installed_version(name.group(1))
    return [{"name": name, "installed": all(v is not None for v in packages.values()), "packages": packages}
            for name, packages in found.items()]
