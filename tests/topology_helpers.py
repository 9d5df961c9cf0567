"""What the tests ask of the local topology beyond what the tooling uses: the topology
(closet_pipeline/dev/topology.py) with helpers to publish and pull, find a job's results and
progress, list stored objects, read the functions' logs and the strict front's refusals, and kill
or restart a function."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from closet_pipeline.dev.topology import LocalTopology


class TopologyUnderTest(LocalTopology):
    # -- Pub/Sub ---------------------------------------------------------------------------------
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        return self.pubsub.publish(topic, data, attributes)

    def add_pull_subscription(self, topic: str, name: str) -> str:
        return self.pubsub.add_pull_subscription(topic, name)

    def pull(self, subscription: str, timeout: float = 30.0, max_messages: int = 10) -> list:
        return self.pubsub.pull(subscription, timeout, max_messages)

    def topic_of(self, stage: str) -> str:
        return next(s["topic"] for s in self.stages if s["name"] == stage)

    # -- what the watches saw --------------------------------------------------------------------
    @property
    def dead_letters(self) -> list:
        return self.watches["dead_letter"].snapshot()

    def results_for(self, job_id: str) -> list:
        return [d for d in self.results if getattr(d, "job_id", None) == job_id]

    def progress_for(self, job_id: str) -> list:
        return [e for e in self.progress if getattr(e, "job_id", None) == job_id]

    def wait_for_progress(self, predicate: Callable, timeout: float = 60.0):
        return self.watches["progress"].wait(predicate, timeout)

    # -- storage ---------------------------------------------------------------------------------
    def upload(self, data: bytes | str | Path, user_id: str, cloth_id: str, file_name: str,
               content_type: str | None = None) -> str:
        return self.upload_job(data, user_id, cloth_id, file_name, content_type).key

    def list_objects(self, area: str, prefix: str | None = None) -> list[str]:
        client = self.storage_client()
        return sorted(b.name for b in client.list_blobs(self.buckets[area], prefix=prefix))

    @property
    def front_ports(self) -> dict[str, int]:
        """The strict GCS front's listeners: admin, public and one per function."""
        return self.front.ports

    def front_refusals(self) -> list[tuple[str, str, str, int]]:
        """What the strict GCS front refused so far: (listener, method, path, status), from its log."""
        proc = self.processes.named("strict-front")
        text = proc.log_path.read_text(errors="replace") if proc else ""
        return [(m[1], m[2], m[3], int(m[4])) for m in re.finditer(r"WARNING (\S+) (\S+) (\S+) -> (\d{3}) ", text)]

    # -- the function servers --------------------------------------------------------------------
    def spec(self, name: str):
        return self.servers.spec(name)

    def function_log(self, name: str) -> str:
        return self.servers.log(name)

    def function_env(self, name: str) -> dict[str, str]:
        """The environment the function `name` runs with."""
        return self.servers.env_of(name)

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(f"----- {p.name} ({p.log_path})\n{p.tail(lines)}" for p in self.procs)

    def kill_function(self, name: str) -> None:
        self.servers.kill(name)

    def restart_function(self, name: str, timeout: float | None = None) -> None:
        self.servers.restart(name, timeout, respawn_dead=self.supervisor is None)

    @property
    def restarts(self) -> list[tuple[str, int | None]]:
        return self.supervisor.restarts if self.supervisor else []
