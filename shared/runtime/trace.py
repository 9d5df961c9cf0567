"""Where one delivery's time goes: one `hop` log line per delivery a function handles, so Cloud
Logging (and `make bench`'s per-hop table, closet_pipeline/bench/hops.py) shows how long a message
waited for its push (`waitedMs`), when its event was decoded (`decodedMs`), when the function sent
the job on (`forwardedMs`: its first publish done), the stage's own run (`stageMs`) and every
storage and publish call (count and ms), out of the delivery's whole time (`totalMs`).

The function's handler opens a hop; the store and the bus a function is built with are wrapped in
`Timed`, which adds each call's time to the open hop. Calls made on worker threads count when the
thread runs in the delivery's context (shared/parallel.py's `each` runs calls that way); their times add up, so storage
time may exceed the wall time when writes overlap.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator, TypeVar

log = logging.getLogger("closet.trace")
T = TypeVar("T")


class Hop:
    def __init__(self, function: str) -> None:
        self.function = function
        self.started = time.perf_counter()
        self.fields: dict[str, object] = {}
        self.spent_ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.phase: str | None = None  # set while the stage runs: its storage calls are counted apart
        self._lock = threading.Lock()

    def add(self, kind: str, ms: float) -> None:
        keys = [kind] if self.phase is None else [kind, self.phase + kind.capitalize()]
        with self._lock:
            for key in keys:
                self.spent_ms[key] = self.spent_ms.get(key, 0.0) + ms
                self.calls[key] = self.calls.get(key, 0) + 1
            if kind == "publish" and "forwardedMs" not in self.fields:
                # The first message out (the next stage's, or the result): where the job's own path
                # leaves this function; what follows (progress, records) only keeps the instance busy.
                self.fields["forwardedMs"] = _ms_since(self.started)

    def summary(self) -> dict[str, object]:
        entry: dict[str, object] = {"function": self.function, **self.fields,
                                    "totalMs": _ms_since(self.started)}
        for kind, ms in sorted(self.spent_ms.items()):
            entry[f"{kind}Ms"] = round(ms, 1)
            entry[f"{kind}Calls"] = self.calls[kind]
        return entry


_HOP: ContextVar[Hop | None] = ContextVar("hop", default=None)


@contextmanager
def hop(function: str, *, published_at: str | None = None, event_time: str | None = None) -> Iterator[Hop]:
    """One delivery, logged when it ends (also when it raises). `published_at` is the Pub/Sub
    message's publishTime, `event_time` the storage event's time (a notification's eventTime)."""
    current = Hop(function)
    received = datetime.now(timezone.utc)
    current.fields["receivedAt"] = received.isoformat(timespec="microseconds")
    published = _when(published_at)
    if published is not None:
        current.fields["waitedMs"] = _ms_between(published, received)  # publish to push delivery
        happened = _when(event_time) if event_time and "." in event_time else None  # whole seconds say nothing
        if happened is not None:
            current.fields["notifiedMs"] = _ms_between(happened, published)  # the object's write to its notification
    token = _HOP.set(current)
    try:
        yield current
    except BaseException as error:
        current.fields["raised"] = type(error).__name__
        raise
    finally:
        _HOP.reset(token)
        log.info("hop", extra={"hop": current.summary(), **{k: v for k, v in current.fields.items()
                                                             if k in ("jobId", "stage")}})


def mark(name: str) -> None:
    """Note when something happened in the open hop, as `{name}Ms` since it began (`decodedMs`)."""
    current = _HOP.get()
    if current is not None:
        current.fields[f"{name}Ms"] = _ms_since(current.started)


def note(**fields: object) -> None:
    """Add fields (jobId, stage, stageMs, ...) to the open hop, if any."""
    current = _HOP.get()
    if current is not None:
        current.fields.update(fields)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """A part of the delivery (the stage's own run): its wall time is `{name}Ms`, and the calls made
    during it are also counted as `{name}StorageMs`, `{name}PublishMs`."""
    current = _HOP.get()
    if current is None:
        yield
        return
    started, current.phase = time.perf_counter(), name
    try:
        yield
    finally:
        current.phase = None
        current.fields[f"{name}Ms"] = _ms_since(started)


@contextmanager
def spent(kind: str) -> Iterator[None]:
    """Time a call as `kind` (storage, publish) in the open hop, if any."""
    started = time.perf_counter()
    try:
        yield
    finally:
        current = _HOP.get()
        if current is not None:
            current.add(kind, (time.perf_counter() - started) * 1000)


class Timed:
    """Wraps an adapter (a BlobStore, a Bus) so every public call's time is added to the open hop."""

    def __init__(self, inner: object, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            with spent(self._kind):
                return attribute(*args, **kwargs)

        return timed


def timed(inner: T, kind: str) -> T:
    """`inner`, timed as `kind`; typed as what it wraps, since it answers every call `inner` does."""
    return Timed(inner, kind)  # type: ignore[return-value]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _when(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _ms_between(earlier: datetime, later: datetime) -> float:
    return round((later - earlier).total_seconds() * 1000, 1)
