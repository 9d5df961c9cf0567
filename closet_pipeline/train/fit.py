"""The training loop both garment models share: AdamW with a one-cycle schedule over shuffled
batches, a loss line per epoch and a validation figure every fifth epoch and at the end."""

from __future__ import annotations

import time
from typing import Callable

import torch


def fit(model: torch.nn.Module, count: int, *, epochs: int, batch: int, lr: float, weight_decay: float,
        pct_start: float, generator: torch.Generator, batch_loss: Callable[[torch.Tensor], torch.Tensor],
        validation: Callable[[], str], started: float) -> None:
    """Train `model` on `count` examples in place; `batch_loss(index)` is the loss of the examples at
    `index` (augmentation included), `validation()` the text added to the epoch's line."""
    steps = epochs * (count // batch)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=pct_start)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for step in range(count // batch):
            loss = batch_loss(order[step * batch:(step + 1) * batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        line = f"epoch {epoch + 1}/{epochs} loss {total / (step + 1):.3f} {time.time() - started:.0f} s"
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            line += validation()
        print(line, flush=True)
    model.eval()
