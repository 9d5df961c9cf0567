"""Storage on this machine: fake-gcs-server (in memory, its finalize notifications published to the
ingest topic), and in front of it the strict GCS front (closet_pipeline/dev/strict_gcs.py: per-function
access as topology.json declares, about one write per second per object, signed URLs that expire,
are verified and bind the upload's size range), listening for the owner ("admin"), for signed URLs
only ("public") and once per function. The front's process also runs the push front when given its
section (closet_pipeline/dev/push_front.py). Each function signs its URLs with a generated key."""

from __future__ import annotations

import json
import mimetypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from closet_pipeline import REPO_ROOT
from closet_pipeline.dev.processes import Processes, free_port, http_ok
from closet_pipeline.dev.tools import fake_gcs_binary
from shared.layout import job_id_for
from shared.topology import HTTP


@dataclass(frozen=True)
class UploadedJob:
    key: str
    generation: int
    job_id: str


class FakeGcsServer:
    def __init__(self, processes: Processes) -> None:
        self.processes = processes
        self.port = 0

    @property
    def url(self) -> str:
        """fake-gcs-server itself (no checks)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, project: str, pubsub_host: str, ingest_topic: str, upload_prefix: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": pubsub_host}
        argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                "-backend", "memory", "-external-url", self.url, "-public-host", f"127.0.0.1:{self.port}",
                "-event.pubsub-project-id", project, "-event.pubsub-topic", ingest_topic,
                "-event.object-prefix", upload_prefix, "-event.list", "finalize"]
        proc = self.processes.spawn("fake-gcs-server", argv, env)
        self.processes.wait_ready(proc, lambda: http_ok(f"{self.url}/storage/v1/b"))


def write_keys(folder: Path, project: str, functions: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """A service-account key file per function: it signs that function's URLs, and the strict
    front knows its public key and whose rights its URLs carry. Returns the files and the emails."""
    from closet_pipeline.dev.keys import generate_service_account_info

    folder.mkdir(exist_ok=True)
    key_files, emails = {}, {}
    for name in functions:
        email = f"{name.replace('_', '-')}@{project}.iam.gserviceaccount.com"
        path = folder / f"{name}.json"
        path.write_text(json.dumps(generate_service_account_info(project, email)))
        path.chmod(0o600)
        key_files[name], emails[name] = path, email
    return key_files, emails


class StorageFront:
    """The strict GCS front's listeners (admin, public, one per function) and its process."""

    def __init__(self, processes: Processes, functions: list[str]) -> None:
        self.processes = processes
        self.ports = {name: free_port() for name in ("admin", "public", *functions)}

    def url(self, listener: str) -> str:
        return f"http://127.0.0.1:{self.ports[listener]}"

    def config(self, upstream: str, specs: list, buckets: dict[str, str], key_files: dict[str, Path],
               emails: dict[str, str], env: dict[str, str]) -> dict:
        return {
            "upstream": upstream,
            "listeners": self.ports,
            "rights": {spec.name: {"read": [buckets[a] for a in spec.reads],
                                   "write": [buckets[a] for a in spec.writes],
                                   "createOnly": spec.kind == HTTP}
                       for spec in specs},
            "signers": {emails[name]: {"principal": name, "keyFile": str(path)} for name, path in key_files.items()},
            "rate": {"perSecond": float(env.get("CLOSET_DEV_WRITES_PER_S", "1")),
                     "burst": float(env.get("CLOSET_DEV_WRITE_BURST", "2"))},
        }

    def start(self, config: dict, path: Path, pubsub_host: str, push_url: str | None) -> None:
        """One process for the strict GCS front and, when `config` has a "push" section, the push front."""
        path.write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1", "PUBSUB_EMULATOR_HOST": pubsub_host}
        argv = [sys.executable, "-m", "closet_pipeline.dev.strict_gcs", str(path)]
        proc = self.processes.spawn("strict-front", argv, env)
        self.processes.wait_ready(proc, lambda: http_ok(f"{self.url('admin')}/storage/v1/b")
                                  and (push_url is None or http_ok(push_url)))


# -- the owner's access (the harness, `closet-pipeline upload`) ---------------------------------------
def storage_client(project: str, endpoint: str):
    from shared.adapters.blobstore.gcs import storage_client as client

    return client(project, emulator=endpoint)


def upload(client, bucket: str, key: str, data: bytes, content_type: str | None,
           metadata: dict[str, str] | None = None) -> UploadedJob:
    """As the app's PUT does; `metadata` are the user's picks (x-goog-meta-category, -image-type)."""
    content_type = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
    blob = client.bucket(bucket).blob(key)
    blob.metadata = metadata or None
    blob.upload_from_string(data, content_type=content_type)
    return UploadedJob(key, int(blob.generation), job_id_for(key, blob.generation))
