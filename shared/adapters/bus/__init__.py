"""Message buses: Pub/Sub in the cloud, an in-process queue for the local run and tests."""

from shared.adapters.bus.base import Bus

__all__ = ["Bus"]
