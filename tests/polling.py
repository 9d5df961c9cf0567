"""Waiting on the emulator topology: poll a condition until it holds or the time is up."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    """Whether `condition()` held within `timeout` seconds (asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
