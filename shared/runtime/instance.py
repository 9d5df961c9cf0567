"""What a pipeline function instance builds once and reuses for every event: settings, the GCS store,
the Pub/Sub bus and a dispatcher over its own stage (or none: the failure handler)."""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from shared.config import get_settings
from shared.runtime import trace
from shared.runtime.dispatch import Dispatcher
from shared.runtime.logs import configure_logging
from shared.stages.context import StageContext

_DISPATCHERS: dict[str, Dispatcher] = {}


def dispatcher(stages: dict[str, ModuleType], images: Callable | None = None) -> Dispatcher:
    """One per instance (the first event builds it): clients and models are reused across events.
    `images` makes the work-image store from the blob store (the stages; the failure handler has none)."""
    key = ",".join(stages) or "dead_letter"
    if key not in _DISPATCHERS:
        from shared.adapters.blobstore.gcs import store_from_settings
        from shared.adapters.bus.pubsub import PubSubBus

        configure_logging()
        settings = get_settings()
        store = trace.timed(store_from_settings(settings), "storage")  # each call's time goes to its hop's log line
        _DISPATCHERS[key] = Dispatcher(StageContext(settings, store, images(store) if images else None),
                                       trace.timed(PubSubBus(settings.project_id), "publish"), stages)
    return _DISPATCHERS[key]
