"""The whole cloud topology on this machine, wired as Terraform wires it in the cloud: `LocalTopology`
composes one local stand-in per concern, each in its own module:

- emulator.py: the Pub/Sub emulator, this process's clients of it and its watches;
- storage_front.py: fake-gcs-server, the strict GCS front before it, each function's signing key;
- push_front.py: the push subscriptions, through the push front (strict_push.py) when strict;
- function_servers.py: one functions-framework server per function, each from its own zip;
- supervisor.py: a function that dies is started again, one over its memory is killed;
- processes.py: how each of them is started (127.0.0.1, a free port) and stopped (by process id).

Everything is derived from shared/topology.json (read by shared.topology): every function it
declares (those whose `enabledBy` setting is set) is served from its zip; every pushed function gets
its subscription with the declared retry policy, dead-letter topic, delivery attempts and ack
deadline, and the progress and results topics get pull subscriptions that this class watches.

    with LocalTopology(env={"CLOSET_WEBHOOK_URL": ...}) as topo:
        job = topo.upload_job(Path("shirt.jpg"), "1", "42", "shirt.jpg")
        document = topo.wait_for_result(job.job_id, timeout=60)

Strict by default (strict=False, or CLOSET_DEV_STRICT=0, gives the forgiving emulators alone): the
functions reach storage only through the strict GCS front and are pushed through the push front,
each may publish only to the topics it declares, runs under its declared timeout and memory, and is
started again when it dies; what is in flight is redelivered. Used by `closet-pipeline dev` and
`upload` (commands.py), the soak, the benchmark, the contract's examples and the tests (which add
their helpers in tests/topology_helpers.py).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from closet_pipeline import REPO_ROOT
from closet_pipeline.dev.emulator import PubSubEmulator, Watch
from closet_pipeline.dev.function_servers import FunctionServers, Wiring
from closet_pipeline.dev.processes import Processes
from closet_pipeline.dev.push_front import PushSubscriptions
from closet_pipeline.dev.storage_front import (FakeGcsServer, StorageFront, UploadedJob, storage_client, upload,
                                               write_keys)
from closet_pipeline.dev.supervisor import Supervisor
from closet_pipeline.dev.tools import TopologyError  # noqa: F401  (raised by the parts; callers catch it here)
from shared.layout import upload_key
from shared.topology import HTTP, TOPOLOGY_FILE
from shared.topology import parse as parse_declaration

TOPOLOGY_JSON = TOPOLOGY_FILE
STATE_FILE = REPO_ROOT / ".dev" / "topology.json"
DEFAULTS = {
    "CLOSET_PROJECT_ID": "closet-local",
    "CLOSET_UPLOADS_BUCKET": "closet-uploads",
    "CLOSET_WORK_BUCKET": "closet-work",
    "CLOSET_RESULTS_BUCKET": "closet-results",
    "CLOSET_CACHE_BUCKET": "closet-cache",
}
AREA_SETTINGS = {"uploads": "CLOSET_UPLOADS_BUCKET", "work": "CLOSET_WORK_BUCKET",
                 "results": "CLOSET_RESULTS_BUCKET", "cache": "CLOSET_CACHE_BUCKET"}


class LocalTopology:
    def __init__(self, env: dict[str, str] | None = None, *, workdir: Path | None = None, watch: bool = True,
                 write_state: bool = False, topology_file: Path = TOPOLOGY_JSON, ready_timeout_s: float = 120.0,
                 strict: bool | None = None, supervise: bool = True,
                 prepare: Callable[[str, Path], None] | None = None, only: list[str] | None = None) -> None:
        """`topology_file`: the declaration to run (a test may give a copy with other figures).
        `prepare(name, folder)`: called on each unpacked zip before its environment is made (a test
        breaks a zip with it, to show the topology then fails). `only`: serve just these functions."""
        self.topology_file = Path(topology_file)
        self.raw = json.loads(self.topology_file.read_text())
        self.declaration = parse_declaration(self.raw)
        self.strict = (os.environ.get("CLOSET_DEV_STRICT", "1") != "0") if strict is None else strict
        self.env = {**DEFAULTS, **{k: v for k, v in os.environ.items() if k.startswith("CLOSET_")}, **(env or {})}
        self.project = self.env["CLOSET_PROJECT_ID"]
        # Topic ids carry CLOSET_TOPIC_PREFIX, as shared.topology.load and Terraform name them.
        self.prefix = self.env.get("CLOSET_TOPIC_PREFIX", "")
        for stage in self.raw["stages"]:
            stage["topic"] = self.prefix + stage["topic"]
        self.raw["topics"] = {key: self.prefix + topic for key, topic in self.raw["topics"].items()}
        self.buckets = {area: self.env[setting] for area, setting in AREA_SETTINGS.items()}
        # The functions that deploy under these settings (a function whose `enabledBy` setting is
        # unset is not deployed, as in Terraform): each its own server, from its own zip.
        settings = {name.removeprefix("CLOSET_").lower(): value for name, value in self.env.items()}
        self.specs = [spec for spec in self.declaration.functions
                      if spec.enabled(settings) and (only is None or spec.name in only)]
        self.watch_enabled = watch
        self.write_state = write_state
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="closet-dev-"))
        self.log_dir = self.workdir / "logs"
        self.processes = Processes(self.log_dir, ready_timeout_s)
        self.pubsub = PubSubEmulator(self.processes, self.project)
        self.gcs = FakeGcsServer(self.processes)
        self.servers = FunctionServers(self.processes, self.specs, self.workdir, self.env, prepare)
        self.push = PushSubscriptions(self.pubsub, self.declaration, self.specs, self.prefix, self.strict)
        self.front: StorageFront | None = None  # strict: made when the function servers' ports are known
        self.supervisor = Supervisor(self.servers) if supervise else None
        self.watches: dict[str, Watch] = {}
        self.key_files: dict[str, Path] = {}
        self._storage = None
        self._stopped = False

    # -- topology.json -------------------------------------------------------------------------
    @property
    def stages(self) -> list[dict]:
        return self.raw["stages"]

    @property
    def ingest_topic(self) -> str:
        return self.stages[0]["topic"]

    @property
    def progress_topic(self) -> str:
        return self.raw["topics"]["progress"]

    @property
    def results_topic(self) -> str:
        return self.raw["topics"]["results"]

    @property
    def dead_letter_topic(self) -> str:
        return self.raw["topics"]["deadLetter"]

    def all_topics(self) -> list[str]:
        return [s["topic"] for s in self.stages] + list(self.raw["topics"].values())

    @property
    def subscribers(self) -> list[dict]:
        """Functions pushed from a subscription of their own on a shared topic (the webhook), as
        declared, when they deploy under these settings."""
        names = {spec.name for spec in self.specs}
        return [s for s in self.raw.get("subscribers", []) if s["name"] in names]

    def topic_named(self, entry: str) -> str:
        """A `publishes`/`topic` entry: a stage's name (its topic) or a key of topology.json's topics."""
        stage = next((s for s in self.stages if s["name"] == entry), None)
        return stage["topic"] if stage else self.raw["topics"][entry]

    # -- where things listen -------------------------------------------------------------------
    @property
    def functions(self) -> dict[str, str]:
        """Function name -> base URL."""
        return self.servers.urls

    @property
    def procs(self) -> list:
        return self.processes.procs

    @property
    def gcs_url(self) -> str:
        """Storage as the project owner sees it (the test harness, `closet-pipeline upload`)."""
        return self.front.url("admin") if self.front else self.gcs.url

    @property
    def public_gcs_url(self) -> str:
        """Where signed URLs point: the strict front's port that serves signed URLs only."""
        return self.front.url("public") if self.front else self.gcs.url

    @property
    def upload_url_secret(self) -> str | None:
        """The bearer secret of the HTTP functions (upload_url, status), when one is served."""
        return self.servers.upload_url_secret if any(spec.kind == HTTP for spec in self.specs) else None

    def describe(self) -> dict:
        return {
            "project": self.project, "gcs": self.gcs_url, "gcsPublic": self.public_gcs_url,
            "gcsUpstream": self.gcs.url, "strict": self.strict, "pubsub": self.pubsub.host,
            "buckets": self.buckets,
            "topics": {"ingest": self.ingest_topic, "progress": self.progress_topic, "results": self.results_topic,
                       "deadLetter": self.dead_letter_topic},
            "functions": self.functions, "logs": str(self.log_dir), "pid": os.getpid(),
        }

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "LocalTopology":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "LocalTopology":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            self.pubsub.start(self.all_topics())
            self.gcs.start(self.project, self.pubsub.host, self.ingest_topic, self.raw.get("uploadPrefix", "uploads/"))
            self.servers.build()
            self.key_files, emails = write_keys(self.workdir / "keys", self.project, list(self.servers.ports))
            if self.strict:
                self.front = StorageFront(self.processes, list(self.servers.ports))
                config = self.front.config(self.gcs.url, self.specs, self.buckets, self.key_files, emails, self.env)
                config["push"] = self.push.config(self.functions)
                self.front.start(config, self.workdir / "strict-front.json", self.pubsub.host, self.push.url)
            for bucket in self.buckets.values():
                self.storage_client().create_bucket(bucket)
            self.servers.start(self._wiring())
            self.push.create_subscriptions(self.functions)
            if self.watch_enabled:
                self._watch_topics()
            if self.supervisor:
                self.supervisor.start()
            if self.write_state:
                STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
                STATE_FILE.write_text(json.dumps(self.describe(), indent=2))
        except BaseException:
            self.stop()
            raise
        return self

    def _wiring(self) -> Wiring:
        wiring = Wiring(self.gcs_url, self.public_gcs_url, self.pubsub.host, self.key_files)
        if self.front:
            wiring.storage_urls = {spec.name: self.front.url(spec.name) for spec in self.specs}
            wiring.allowed_topics = {spec.name: [self.topic_named(entry) for entry in spec.publishes]
                                     for spec in self.specs}
        return wiring

    def _watch_topics(self) -> None:
        self.watches["progress"] = self.pubsub.watch(self.progress_topic, "dev-watch-progress", _progress_doc)
        self.watches["results"] = self.pubsub.watch(self.results_topic, "dev-watch-results", _result_doc)
        self.watches["dead_letter"] = self.pubsub.watch(self.dead_letter_topic, "dev-watch-dead-letter", _raw)
        for subscriber in self.subscribers:
            topic = self.topic_named(subscriber["deadLetterTopic"])
            self.watches[f"{subscriber['name']}_dead_letter"] = self.pubsub.watch(topic, f"dev-watch-{topic}", _raw)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = self.processes.stopped = True
        if self.supervisor:
            self.supervisor.join(5)
        self.pubsub.close()
        self.processes.stop_all()
        if self.write_state:
            try:
                if json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
                    STATE_FILE.unlink()
                    STATE_FILE.parent.rmdir()  # only when empty
            except (OSError, ValueError):
                pass
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass

    def remove_workdir(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- as the app and its backend see it -------------------------------------------------------
    def storage_client(self):
        if self._storage is None:
            self._storage = storage_client(self.project, self.gcs_url)
        return self._storage

    def upload_job(self, data: bytes | str | Path, user_id: str, cloth_id: str, file_name: str,
                   content_type: str | None = None, key: str | None = None,
                   metadata: dict[str, str] | None = None) -> UploadedJob:
        if isinstance(data, (str, Path)):
            data = Path(data).read_bytes()
        key = key or upload_key(user_id, cloth_id, file_name)
        return upload(self.storage_client(), self.buckets["uploads"], key, data, content_type, metadata)

    def read_object(self, area: str, key: str) -> bytes:
        return self.storage_client().bucket(self.buckets[area]).blob(key).download_as_bytes()

    @property
    def results(self) -> list:
        return self.watches["results"].snapshot()

    @property
    def progress(self) -> list:
        return self.watches["progress"].snapshot()

    def wait_for_result(self, job: str | Callable, timeout: float = 60.0):
        """The first result document of a job (a job id or cloth id), or of any document `job(doc)` accepts."""
        predicate = job if callable(job) else (lambda d, j=job: getattr(d, "job_id", None) == j
                                                or getattr(d, "cloth_id", None) == j)
        found = self.watches["results"].wait(predicate, timeout)
        if found is None:
            raise TimeoutError(f"no result for {job!r} within {timeout}s; logs in {self.log_dir}")
        return found

    def start_web(self, port: int = 0):
        """Serve clients/web/ (the demo page) with a same-origin proxy to upload_url, status and the
        emulated bucket, on a daemon thread of this process; `self.web.stop()` stops it."""
        from closet_pipeline.dev.web import DevWeb

        self.web = DevWeb(self.functions, self.public_gcs_url, auth_token=self.upload_url_secret, port=port).start()
        return self.web


# The watches' parsers, looked up when the topology starts (tests/contract.py checks each document).
def _result_doc(data: bytes):
    from shared.documents import ResultDocument

    return ResultDocument.model_validate_json(data)


def _progress_doc(data: bytes):
    from shared.documents import ProgressEvent

    return ProgressEvent.model_validate_json(data)


def _raw(data: bytes) -> bytes:
    return data
