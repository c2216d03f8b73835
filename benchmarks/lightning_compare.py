"""``lightning_speedup``: Studio's trainer throughput over PyTorch Lightning's ``Trainer``.

Same model (the ``mlp`` family's default on digits, same initial weights), same data split,
batch size 64, Adam at 1e-3, validation after every epoch, on the CPU with one thread. Lightning
runs as its documentation shows (a ``LightningModule`` over ``DataLoader(TensorDataset)``) with
logging, progress bars, checkpointing and the model summary off. Interleaved A B A B after a
warm-up; the figure is the median Lightning time over the median Studio time for the same number
of epochs (a throughput ratio; > 1 means Studio is faster). Needs the ``bench`` extra.
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from studio.backend.core.requests import ModelSpec, TrainConfig
from studio.backend.pytorch.models import build_model
from studio.backend.pytorch.trainer import Trainer


def _data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _model():
    return build_model(ModelSpec(name="mlp"), (1, 8, 8), 10, seed=0)


def _studio(train, val, epochs: int) -> float:
    trainer = Trainer(_model(), "classification", TrainConfig(epochs=epochs, batch_size=64, lr=1e-3), seed=0)
    t0 = time.perf_counter()
    trainer.fit(train, val)
    return time.perf_counter() - t0


def _lightning(train, val, epochs: int) -> float:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model()

        def training_step(self, batch, _):
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            out = self.net(x)
            return {"loss": F.cross_entropy(out, y), "acc": (out.argmax(1) == y).float().mean()}

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    train_loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    val_loader = DataLoader(TensorDataset(*val), batch_size=64)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0)
    module = Module()
    t0 = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return {"lightning_speedup": {"value": None, "unit": "x", "goal": ">= 1.0",
                                      "reference": "lightning not installed: pip install -e '.[bench]'"}}
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    train, val = _data()
    epochs, repeats = (3, 3) if quick else (5, 7)
    _studio(train, val, 1)
    _lightning(train, val, 1)
    studio, light = [], []
    for _ in range(repeats):
        studio.append(_studio(train, val, epochs))
        light.append(_lightning(train, val, epochs))
    s, lt = statistics.median(studio), statistics.median(light)
    return {"lightning_speedup": {
        "value": round(lt / s, 2), "unit": "x", "goal": ">= 1.0",
        "reference": "PyTorch Lightning Trainer, same model/data/batch/optimiser, logging and progress off",
        "detail": {"studio_s": s, "lightning_s": lt, "epochs": epochs, "repeats": repeats},
    }}


if __name__ == "__main__":
    print(run(quick=True))
