"""The topology, defined once in topology.json: stage order, topics and what each stage touches.
The code, the local emulator topology and Terraform all read that file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.config import get_settings

TOPOLOGY_FILE = Path(__file__).with_name("topology.json")


@dataclass(frozen=True)
class StageSpec:
    name: str
    topic: str
    next: str | None
    timeout_s: int
    concurrency: int


@dataclass(frozen=True)
class Topology:
    stages: tuple[StageSpec, ...]
    progress_topic: str
    results_topic: str
    dead_letter_topic: str

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def next_topic(self, name: str) -> str | None:
        following = self.stage(name).next
        return self.stage(following).topic if following else None

    @property
    def first(self) -> StageSpec:
        return self.stages[0]

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The stages in the order a photo passes them: the one definition of that order."""
        return tuple(spec.name for spec in self.stages)


@lru_cache(maxsize=1)
def load() -> Topology:
    """topology.json with CLOSET_TOPIC_PREFIX before every topic id, as Terraform names them."""
    prefix = get_settings().topic_prefix
    raw = json.loads(TOPOLOGY_FILE.read_text())
    stages = tuple(StageSpec(s["name"], prefix + s["topic"], s["next"], s["timeoutSeconds"], s["concurrency"])
                   for s in raw["stages"])
    topics = raw["topics"]
    return Topology(stages, prefix + topics["progress"], prefix + topics["results"], prefix + topics["deadLetter"])


def function_timeout_s(name: str) -> int:
    """A function's timeout as deployed (`timeoutSeconds`), for the deadlines of what it does. Where
    functions-framework itself enforces a timeout (CLOUD_RUN_TIMEOUT_SECONDS: the local topology sets
    it, from its own copy of this file), that one is the instance's real limit."""
    enforced = os.environ.get("CLOUD_RUN_TIMEOUT_SECONDS")
    if enforced and enforced.isdigit() and int(enforced) > 0:
        return int(enforced)
    raw = json.loads(TOPOLOGY_FILE.read_text())
    specs = [*raw["stages"], raw["failureHandler"], *raw.get("httpFunctions", []), *raw.get("subscribers", [])]
    return int(next(spec["timeoutSeconds"] for spec in specs if spec["name"] == name))
