"""The training loop both garment models share: AdamW with a one-cycle schedule over batches of
drawn examples, a loss line per epoch, a validation line every few epochs and at the end, and a
checkpoint after every epoch so an interrupted run resumes where it stopped.

Checkpoints live outside the repository, in `$CLOSET_TRAINING_DIR` (default
`~/.cache/closet-pipeline/training`), one folder per model; a run with other settings than the
checkpoint's starts afresh rather than mixing the two.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import torch

TRAINING_DIR = Path(os.environ.get("CLOSET_TRAINING_DIR", Path.home() / ".cache" / "closet-pipeline" / "training"))
# A GPU trains when one is there (never needed: every figure in MODELS.md can be made on 2 CPU cores).
DEVICE = torch.device(os.environ.get("CLOSET_TRAINING_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))


def fit(model: torch.nn.Module, name: str, settings: dict, *, epochs: int, steps: int, batch: int,
        groups: list[dict], weight_decay: float, pct_start: float, generator: torch.Generator,
        draw: Callable[[int], torch.Tensor], batch_loss: Callable[[torch.Tensor], torch.Tensor],
        validation: Callable[[], str], validate_every: int = 5) -> dict:
    """Train `model` in place for `epochs` of `steps` batches. `draw(n)` gives the indices of n
    examples, `batch_loss(index)` their loss (augmentation included), `validation()` the text added
    to an epoch's line. `groups` are AdamW parameter groups, each with its peak learning rate `lr`.
    Returns the run's record: settings, epochs, seconds trained (over all resumed runs), threads."""
    folder = TRAINING_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.pt"
    optimiser = torch.optim.AdamW(groups, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[g["lr"] for g in groups],
                                                   total_steps=epochs * steps, pct_start=pct_start)
    state = {"settings": settings, "epoch": 0, "seconds": 0.0}
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location=DEVICE)
        if saved["settings"] == settings:
            model.load_state_dict(saved["model"])
            optimiser.load_state_dict(saved["optimiser"])
            schedule.load_state_dict(saved["schedule"])
            generator.set_state(saved["generator"].cpu())
            state = {k: saved[k] for k in ("settings", "epoch", "seconds")}
            print(f"{name}: resumed from {checkpoint} after epoch {state['epoch']}", flush=True)
        else:
            print(f"{name}: {checkpoint} was made with other settings; starting afresh", flush=True)
    for epoch in range(state["epoch"], epochs):
        started = time.time()
        model.train()
        order = draw(steps * batch)
        total = 0.0
        for step in range(steps):
            loss = batch_loss(order[step * batch:(step + 1) * batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        state["epoch"], state["seconds"] = epoch + 1, state["seconds"] + time.time() - started
        line = f"{name} epoch {epoch + 1}/{epochs} loss {total / steps:.3f} {state['seconds']:.0f} s"
        if (epoch + 1) % validate_every == 0 or epoch + 1 == epochs:
            line += validation()
        print(line, flush=True)
        torch.save({**state, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "generator": generator.get_state()}, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
        with (folder / "log.txt").open("a") as log:
            log.write(line + "\n")
    model.eval()
    record = {**settings, "epochs": epochs, "seconds": round(state["seconds"]), "threads": torch.get_num_threads(),
              "device": DEVICE.type}
    (folder / "record.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
