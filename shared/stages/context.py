"""What every stage is given (settings, storage, providers) and what it gives back. The stage layer
imports nothing of the runtime (shared/runtime/): the runtime calls stages, never the other way."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from shared.adapters.blobstore import BlobStore
from shared.config import Settings
from shared.documents import ProgressEvent, ResultDocument
from shared.messages import StageMessage

if TYPE_CHECKING:  # the images live in shared/stages/images.py (Pillow): functions without images never load it
    from shared.stages.images import WorkImages

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """The message being handled: when its function's request times out."""

    deadline: float  # time.monotonic()


_DELIVERY: ContextVar[Delivery | None] = ContextVar("delivery", default=None)


@contextmanager
def delivery_scope(deadline: float) -> Iterator[None]:
    """Set by the dispatcher around a stage's run (per thread, so parallel garments don't mix)."""
    token = _DELIVERY.set(Delivery(deadline))
    try:
        yield
    finally:
        _DELIVERY.reset(token)


@dataclass
class StageContext:
    """Built once per process (a function instance, the local run), shared by every event."""

    settings: Settings
    store: BlobStore
    images: WorkImages | None  # None where no stage runs (the failure handler)

    _loaded: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remaining_s(self) -> float:
        """Seconds left before the function's request times out (a generous default outside one)."""
        delivery = _DELIVERY.get()
        return 600.0 if delivery is None else delivery.deadline - time.monotonic()

    def once(self, name: str, load: Callable[[], T]) -> T:
        """What a stage loads once per process (a model session, a client): each stage names and
        builds its own, so a function imports only its own stage's providers."""
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load()
            return self._loaded[name]


@dataclass(frozen=True)
class Outcome:
    """What a stage returns: the messages for the next stage and the progress events to publish.

    A stage that would end the job gives its `ending` (which writes the outputs and returns the
    result document): the runtime runs it only if this delivery wins the job's end
    (shared/runtime/job_end.py), and publishes `progress` only then. The stage claims nothing."""

    next: tuple[StageMessage, ...] = ()
    progress: tuple[ProgressEvent, ...] = ()
    ending: Callable[[], ResultDocument] | None = None
