"""The doctor's report as text for a terminal, a bug report or the window's Help dialog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.backend.core.formatting import format_bytes

__all__ = ["format_report"]

_LABEL = 11


def _size(n: Any) -> str:
    return format_bytes(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else "?"


def _rows(label: str, lines: list[str]) -> list[str]:
    lines = lines or ["-"]
    return [f"{label:<{_LABEL}}{lines[0]}"] + [" " * _LABEL + line for line in lines[1:]]


def _backend(b: Mapping[str, Any]) -> list[str]:
    if "error" in b:
        return [f"not available: {b['error']}"]
    if "pending" in b:
        return [str(b["pending"])]
    build = b.get("build", {})
    accel = [f"CUDA {build['cuda']}" if build.get("cuda") else "", f"ROCm {build['hip']}" if build.get("hip") else "",
             "MPS" if build.get("mps") else ""]
    built = ", ".join(a for a in accel if a) or "CPU only"
    usable = ", ".join(k for k in ("cuda", "mps") if build.get(f"{k}_available")) or "none"
    return [f"{b.get('backend')}: {b.get('framework')} {b.get('version')}, built for {built}; usable accelerators: "
            f"{usable}; {b.get('threads')} threads"]


def _devices(b: Mapping[str, Any]) -> list[str]:
    out = []
    for d in b.get("devices", ()):
        free = f", {_size(d['free_memory_bytes'])} free" if d.get("free_memory_bytes") is not None else ""
        memory = f", {_size(d['total_memory_bytes'])}{free}" if d.get("total_memory_bytes") is not None else ""
        out.append(f"{d['id']}: {d['name']}{memory}")
    return out


def _libraries(libs: Mapping[str, Any]) -> list[str]:
    out = []
    for plugin, entry in libs.items():
        if not entry["missing"]:
            out.append(f"{plugin}: all present")
        else:
            out.append(f"{plugin}: missing {', '.join(entry['missing'])}")
            out.append(f"  install: {entry['install'] or 'the packages of your distribution that provide them'}")
    return out


def format_report(r: Mapping[str, Any]) -> str:
    qt, display = r["qt"], r["display"]
    env = "  ".join(f"{k}={display[k]}" for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM") if display.get(k))
    folders = [f"{f['name']:<9}{f.get('file') or f['path']}  "
               f"({'writable' if f['writable'] else 'NOT WRITABLE'}{'' if f['exists'] else ', not created yet'})"
               for f in r["folders"]]
    extras = [f"{e['name']}: {'installed' if e['installed'] else 'not installed'} ("
              + ", ".join(f"{n} {v or 'missing'}" for n, v in e["packages"].items()) + ")" for e in r["extras"]]
    disk = [f"{d['path']}: " + (d["error"] if "error" in d else f"{_size(d['free_bytes'])} free of "
                                f"{_size(d['total_bytes'])}") for d in r["disk"]]
    lines = [
        *_rows("Studio", [f"{r['studio']['version']}  ({r['studio']['location']})"]),
        *_rows("Python", [f"{r['python']['version']} ({r['python']['implementation']})  {r['python']['executable']}"]),
        *_rows("System", [r["system"]["os"] + (f"  ({r['system']['distribution']})"
                                                if r["system"].get("distribution") else "")]),
        *_rows("Backend", _backend(r["backend"])),
        *_rows("Devices", _devices(r["backend"])),
        *_rows("Qt", [f"PySide6 {qt['pyside6'] or 'not installed'}, Qt {qt['qt'] or '?'}, "
                      f"shiboken6 {qt['shiboken6'] or '?'}"]),
        *_rows("Plugin", [f"{qt['plugin'] or 'none can start'}  (available: "
                          f"{', '.join(qt['plugins_available']) or 'none found'})"]),
        *_rows("Display", [(env or "no display variables set") + ("  ok" if display["ok"] else "  cannot open")]),
        *_rows("Libraries", _libraries(r["libraries"]) if r["libraries"] else ["(not needed on this system)"]),
        *_rows("Folders", folders),
        *_rows("Extras", extras),
        *_rows("Disk", disk),
        "",
        *_rows("Problems", [f"- {p}" for p in r["problems"]] or ["none found"]),
    ]
    return "\n".join(lines)
