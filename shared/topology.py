"""The topology, declared once in topology.json and read here, by everything that needs it.

topology.json is the only list of functions: their kinds, entry points, memory, cpu, timeouts,
concurrency, what they read, write and publish, the subscriptions that push to them with their retry
policies, and the lifetimes of the links the pipeline hands out. `declaration()` reads it; packaging,
the Terraform check, the local topology, the soak and the tests take the functions from it, and
Terraform reads the same file (terraform/topology.tf). A function added to the JSON gets its zip, its
Terraform resources and its local server with no other edit.

`load()` is the runtime's view: stage order and topic ids with CLOSET_TOPIC_PREFIX, as deployed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from shared.config import get_settings

TOPOLOGY_FILE = Path(__file__).with_name("topology.json")

STAGE, FAILURE_HANDLER, HTTP, SUBSCRIBER = "stage", "failure_handler", "http", "subscriber"
_MEMORY = re.compile(r"([0-9]+)(Mi|Gi)")


@dataclass(frozen=True)
class RetryPolicy:
    """How Pub/Sub redelivers a failed push: backoff doubling from the minimum up to the maximum,
    at most `max_delivery_attempts` deliveries (then the dead-letter topic, where there is one)."""

    minimum_backoff_s: int
    maximum_backoff_s: int
    max_delivery_attempts: int

    def backoff_s(self, failures: int) -> float:
        """The wait after the `failures`-th failed delivery."""
        return float(min(self.maximum_backoff_s, self.minimum_backoff_s * 2 ** max(0, failures - 1)))

    @property
    def window_s(self) -> float:
        """The shortest time from the first delivery to the last: the retries' window. Terraform's
        modules/messaging computes the same sum for its precondition."""
        return sum(self.backoff_s(n) for n in range(1, self.max_delivery_attempts))


@dataclass(frozen=True)
class FunctionSpec:
    """One function as declared, whichever list of topology.json it is in."""

    name: str
    kind: str  # stage, failure_handler, http or subscriber
    entry_point: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    publishes: tuple[str, ...]
    memory: str  # as Cloud Functions takes it: 512Mi, 2Gi
    cpu: str
    timeout_s: int
    concurrency: int
    max_instances: int
    source_topic: str | None  # the topic id it is pushed from (no prefix); None for HTTP functions
    dead_letter_topic: str | None  # where its subscription dead-letters (no prefix)
    retry: RetryPolicy | None  # its subscription's retry policy; None for HTTP functions
    enabled_by: str | None  # a setting (Terraform: a variable of the same name) that must be set for it to deploy
    signs_urls: bool  # signs V4 URLs (upload URLs, result links) as itself

    @property
    def signature(self) -> str:
        """functions-framework's --signature-type."""
        return "http" if self.kind == HTTP else "cloudevent"

    @property
    def memory_bytes(self) -> int:
        number, unit = _MEMORY.fullmatch(self.memory).groups()
        return int(number) << (20 if unit == "Mi" else 30)

    def enabled(self, values: Mapping[str, Any]) -> bool:
        """Whether it deploys under these settings: always, or when its `enabledBy` setting is set."""
        return self.enabled_by is None or bool(values.get(self.enabled_by))


@dataclass(frozen=True)
class Links:
    upload_s: int  # a signed upload URL (shared/http/upload_url.py)
    result_s: int  # the links of a result document (signed per hand-out: shared/runtime/links.py)


@dataclass(frozen=True)
class Declaration:
    raw: dict
    functions: tuple[FunctionSpec, ...]
    runtime: str  # Cloud Functions' runtime id, e.g. python311
    delivery: RetryPolicy  # the stage subscriptions' and the failure handler's policy
    ack_margin_s: int  # a push's ack deadline is its function's timeout plus this
    links: Links

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name == name:
                return spec
        raise KeyError(f"{name} is not a function of {TOPOLOGY_FILE.name}")

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.functions]

    @property
    def python_version(self) -> str:
        """The Python version the runtime names: python311 -> 3.11."""
        digits = self.runtime.removeprefix("python")
        return f"{digits[0]}.{digits[1:]}"

    def ack_deadline_s(self, spec: FunctionSpec) -> int:
        """A push lasts up to its subscription's ack deadline, which must outlive the function's
        timeout (600 s is Pub/Sub's maximum)."""
        return min(600, max(10, spec.timeout_s + self.ack_margin_s))


def parse(raw: dict) -> Declaration:
    topics = raw["topics"]
    stage_topics = {stage["name"]: stage["topic"] for stage in raw["stages"]}
    delivery = raw["delivery"]
    policy = RetryPolicy(delivery["minimumBackoffSeconds"], delivery["maximumBackoffSeconds"],
                         delivery["maxDeliveryAttempts"])

    def spec(entry: dict, kind: str, source: str | None, dead_letter: str | None, retry: RetryPolicy | None):
        return FunctionSpec(
            name=entry["name"], kind=kind, entry_point=entry["entryPoint"], reads=tuple(entry["reads"]),
            writes=tuple(entry["writes"]), publishes=tuple(entry["publishes"]), memory=entry["memory"],
            cpu=str(entry["cpu"]), timeout_s=int(entry["timeoutSeconds"]), concurrency=int(entry["concurrency"]),
            max_instances=int(entry["maxInstances"]), source_topic=source, dead_letter_topic=dead_letter,
            retry=retry, enabled_by=entry.get("enabledBy"), signs_urls=bool(entry.get("signsUrls")))

    functions = [spec(stage, STAGE, stage["topic"], topics["deadLetter"], policy) for stage in raw["stages"]]
    functions.append(spec(raw["failureHandler"], FAILURE_HANDLER, topics["deadLetter"], None, policy))
    functions += [spec(entry, HTTP, None, None, None) for entry in raw.get("httpFunctions", [])]
    for entry in raw.get("subscribers", []):
        own = RetryPolicy(entry["minimumBackoffSeconds"], entry["maximumBackoffSeconds"], entry["maxDeliveryAttempts"])
        source = stage_topics.get(entry["topic"]) or topics[entry["topic"]]
        functions.append(spec(entry, SUBSCRIBER, source, topics[entry["deadLetterTopic"]], own))
    links = Links(int(raw["links"]["uploadSeconds"]), int(raw["links"]["resultSeconds"]))
    margin = int(delivery["ackMarginSeconds"])
    for spec in functions:
        # Links are signed for each webhook delivery, not once for its whole retry window (hours):
        # they need to outlive one delivery, and must, or the receiver is handed links that expire
        # while it is being called. (Terraform's check "links_outlive_a_webhook_delivery" is the same.)
        if spec.kind == SUBSCRIBER and links.result_s <= spec.timeout_s + margin:
            raise ValueError(f"links.resultSeconds ({links.result_s}) must outlive one {spec.name} delivery "
                             f"({spec.timeout_s} s + {margin} s)")
    return Declaration(raw, tuple(functions), raw["runtime"], policy, margin, links)


@lru_cache(maxsize=8)
def declaration(path: Path = TOPOLOGY_FILE) -> Declaration:
    """topology.json as declared (topic ids without a prefix). Cached per file."""
    return parse(json.loads(Path(path).read_text(encoding="utf-8")))


# -- the runtime's view ---------------------------------------------------------------------------
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
    raw = declaration().raw
    stages = tuple(StageSpec(s["name"], prefix + s["topic"], s["next"], s["timeoutSeconds"], s["concurrency"])
                   for s in raw["stages"])
    topics = raw["topics"]
    return Topology(stages, prefix + topics["progress"], prefix + topics["results"], prefix + topics["deadLetter"])


def function_timeout_s(name: str) -> int:
    """A function's timeout as deployed (`timeoutSeconds`), for the deadlines of what it does. Where
    functions-framework itself enforces a timeout (CLOUD_RUN_TIMEOUT_SECONDS: the local topology sets
    it from this declaration), that one is the instance's real limit."""
    enforced = os.environ.get("CLOUD_RUN_TIMEOUT_SECONDS")
    if enforced and enforced.isdigit() and int(enforced) > 0:
        return int(enforced)
    return declaration().function(name).timeout_s
