"""The bus port: publish bytes with attributes to a named topic."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Bus(ABC):
    @abstractmethod
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> None:
        """Publish one message; returns once the bus has accepted it (raises if it could not)."""
