"""Calls made at once, each a round trip (storage calls, link signatures)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(call: Callable[[T], R], items: Iterable[T], *, limit: int = 8) -> list[R]:
    """`call(item)` for every item at once, on threads that run in the caller's context (so a
    delivery's open hop, shared/runtime/trace.py, counts their calls). Results in the items' order;
    the first failure is raised."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items)))) as pool:
        futures = [pool.submit(copy_context().run, call, item) for item in items]
        return [future.result() for future in futures]
