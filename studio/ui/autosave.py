"""Autosaved runs and recovery after a crash (REQ-U04).

Each training run writes its training checkpoint to ``<state>/autosave/<run>.safetensors``
(the ``train`` handler's ``checkpoint_path``: after the first epoch, then at most every 30 s at an
epoch end, ``checkpoint_interval_s``) and a marker ``<run>.json``
holding the request. A clean end (finished, stopped or failed with a message) removes both;
a marker left behind means Studio died mid-run, and the next start offers to resume from the
checkpoint (``TrainRequest.resume_from``).
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import uuid
from dataclasses import dataclass

from studio.backend.core.requests import TrainRequest
from studio.paths import state_dir

__all__ = ["Autosave", "Interrupted", "autosave_dir", "find_interrupted", "AUTOSAVE_INTERVAL_S"]

# after the first epoch, then at most every 30 s: a crash loses at most half a minute of training,
# and runs of many tiny epochs do not spend their time writing checkpoints
AUTOSAVE_INTERVAL_S = 30.0


def autosave_dir() -> pathlib.Path:
    """``autosave`` in the state folder (:func:`studio.paths.state_dir`; ``$STUDIO_STATE_DIR`` moves it)."""
    return state_dir() / "autosave"


@dataclass(frozen=True)
class Interrupted:
    marker: pathlib.Path
    checkpoint: pathlib.Path
    request: TrainRequest
    started: float

    def discard(self) -> None:
        self.marker.unlink(missing_ok=True)
        self.checkpoint.unlink(missing_ok=True)


class Autosave:
    """The marker and checkpoint path of one run."""

    def __init__(self, request: TrainRequest, folder: pathlib.Path | None = None,
                 checkpoint: pathlib.Path | None = None) -> None:
        """A new autosave for ``request``; with ``checkpoint``, the one a resumed run keeps writing."""
        if checkpoint is None:
            folder = folder or autosave_dir()
            folder.mkdir(parents=True, exist_ok=True)
            checkpoint = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.safetensors"
        self.checkpoint = checkpoint
        self.marker = checkpoint.with_suffix(".json")
        self.request = request

    def start(self) -> TrainRequest:
        """Write the marker; returns the request with the checkpoint path filled in."""
        from dataclasses import replace

        request = replace(self.request, checkpoint_path=str(self.checkpoint), resume_from=None, continue_from=None,
                          checkpoint_interval_s=AUTOSAVE_INTERVAL_S)
        record = {"request": request.to_json(), "checkpoint": str(self.checkpoint), "started": time.time()}
        tmp = self.marker.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.marker)
        return request

    def end(self) -> None:
        """A clean end: nothing to recover."""
        self.marker.unlink(missing_ok=True)
        self.checkpoint.unlink(missing_ok=True)


def find_interrupted(folder: pathlib.Path | None = None) -> list[Interrupted]:
    """Markers whose run left a checkpoint behind, newest first; broken markers are removed."""
    folder = folder or autosave_dir()
    found = []
    for marker in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            request = TrainRequest.from_json(record["request"])
            checkpoint = pathlib.Path(record["checkpoint"])
            started = float(record.get("started", 0.0))
        except Exception:  # noqa: BLE001 - a broken or outdated marker is dropped
            marker.unlink(missing_ok=True)
            continue
        if checkpoint.is_file():
            found.append(Interrupted(marker, checkpoint, request, started))
        else:
            marker.unlink(missing_ok=True)  # died before the first epoch ended: nothing to resume
    return sorted(found, key=lambda i: i.started, reverse=True)
