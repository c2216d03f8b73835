"""REQ-X03: ``torchrun --nproc_per_node 2 -m studio train ...`` trains with DistributedDataParallel on
CPU (gloo): each rank trains on its shard of the seeded order, both end with identical weights, and
only rank 0 writes the checkpoint (which the window's ``load`` handler opens) and the log."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from integration_helpers import studio_env

from studio.backend.core.registry import default_registry
from studio.backend.core.requests import LoadRequest
from studio.backend.pytorch.distributed import shard_indices
from studio.backend.pytorch.trainer import epoch_order

pytestmark = pytest.mark.req("REQ-X03")

TORCHRUN = Path(sys.executable).with_name("torchrun")

# Each rank runs the real command line (studio.cli.run, what ``-m studio`` runs), then writes the
# SHA-256 of the weights it ended with; a spy on the train handler finds the trained model.
RANK_SCRIPT = r"""
import hashlib, os, sys
from studio.backend.core.registry import default_registry
from studio.backend.pytorch.model_store import store
from studio.cli import run

registry = default_registry()
train = registry.get("pytorch", "train")
results = []
def spy(request, **kwargs):
    results.append(train(request, **kwargs))
    return results[-1]
registry.register("pytorch", "train", spy, replace=True)
code = run(sys.argv[2:])
state = store.get(results[-1].model).module.state_dict()
digest = hashlib.sha256(b"".join(k.encode() + state[k].cpu().numpy().tobytes() for k in sorted(state))).hexdigest()
with open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.sha256"), "w") as fh:
    fh.write(digest)
raise SystemExit(code)
"""


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    return hashlib.sha256(b"".join(k.encode() + state[k].cpu().numpy().tobytes() for k in sorted(state))).hexdigest()


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (2, 4), (1797, 2)])
def test_shards_are_equal_cover_the_epoch_and_overlap_only_in_the_padding(n: int, world: int) -> None:
    order = epoch_order(seed=3, epoch=1, n=n)
    shards = [shard_indices(order, rank, world) for rank in range(world)]
    size = -(-n // world)
    assert all(len(s) == size for s in shards)
    everything = torch.cat(shards)
    assert set(everything.tolist()) == set(range(n))  # every sample is seen
    assert len(everything) - n == size * world - n  # repeats only as many as the padding needs
    # at each position the ranks hold consecutive entries of the single-process order
    padded = torch.stack(shards, dim=1).reshape(-1)
    assert torch.equal(padded[:n], order)


@pytest.mark.slow
def test_two_cpu_ranks_end_identical_and_only_rank_0_writes(tmp_path: Path) -> None:
    assert TORCHRUN.exists(), "the venv's torchrun"
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "ddp.safetensors"
    env = studio_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                      env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path),
         "train", "--data", "spirals", "--model", "mlp", "--hidden", "16", "--epochs", "2", "--batch-size", "64",
         "--device", "cpu", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    hashes = [(tmp_path / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1], "both ranks end with the same weights"
    # exactly one checkpoint, written by rank 0 alone (rank 1's output is quiet)
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["ddp.safetensors"]
    assert not list(tmp_path.glob(".*studio-tmp*"))
    assert proc.stdout.count("Saved the model to") == 1 and proc.stdout.count("epoch 2/2") == 1
    # 720 training samples, 360 per rank: 6 steps of at most 64 per epoch (12 in a single process)
    assert "2 epochs of 6 steps" in proc.stdout
    # the log file has the run once: only rank 0 logs
    log = (tmp_path / "logs" / "studio.log").read_text()
    assert log.count("studio train --data spirals") == 1
    # the window opens the checkpoint, and it holds the weights both ranks ended with
    loaded = default_registry().get("pytorch", "load")(LoadRequest(path=str(out)))
    assert loaded.metadata["data"]["name"] == "spirals"
    from studio.backend.pytorch.model_store import store

    assert weights_hash(store.get(loaded.model).module.state_dict()) == hashes[0]
