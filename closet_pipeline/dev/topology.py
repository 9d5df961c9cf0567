"""The whole cloud topology on this machine: the Pub/Sub emulator, fake-gcs-server and one
functions-framework server per function, wired as Terraform wires them in the cloud.

Everything is derived from shared/topology.json (read by shared.topology): every function it
declares (those whose `enabledBy` setting is set) is built into its zip as `make package` builds it
(closet_pipeline/packaging.py, from the working tree), unpacked, and served through functions-framework
in an environment installed from that zip's requirements.txt alone (closet_pipeline/function_envs.py):
what runs here is what deploys, so a module or a requirement missing from a zip fails here. Every
pushed function gets its subscription with the declared retry policy, dead-letter topic, delivery
attempts and ack deadline (enforced by the push front, as Pub/Sub does; the emulator's own backoff
is not Pub/Sub's), and the progress and results topics get pull subscriptions that this class watches.

    with LocalTopology(env={"CLOSET_WEBHOOK_URL": ...}) as topo:
        job = topo.upload_job(Path("shirt.jpg"), "1", "42", "shirt.jpg")
        document = topo.wait_for_result(job.job_id, timeout=60)

Strict by default (strict=False, or CLOSET_DEV_STRICT=0, gives the forgiving emulators alone): the
functions reach fake-gcs-server only through the strict GCS front (closet_pipeline/dev/strict_gcs.py:
per-function access as topology.json declares, about one write per second per object, signed URLs
that expire, are verified and bind the upload's size range), Pub/Sub pushes through the push front
(strict_push.py: the declared backoff and delivery attempts, dead-lettering, `deliveryAttempt`), each
function may publish only to the topics it declares, runs under its declared timeout and memory
(a process group over its memory is killed, as Cloud Run kills an instance), and a function process
that dies is started again (as Cloud Run starts a new instance); what is in flight is redelivered.

Every process binds 127.0.0.1 on a free port, runs in its own process group and is stopped by its
process id (SIGTERM, then SIGKILL). Used by `closet-pipeline dev`, `closet-pipeline upload` and
tests/test_topology.py.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from closet_pipeline import REPO_ROOT
from closet_pipeline.dev.tools import TopologyError, fake_gcs_binary, missing_tools, pubsub_jar  # noqa: F401
from closet_pipeline.packaging import MODEL_ARCNAME, MODEL_FUNCTION
from shared.layout import UPLOAD_METADATA, job_id_for, upload_key
from shared.topology import HTTP, SUBSCRIBER, TOPOLOGY_FILE
from shared.topology import parse as parse_declaration

log = logging.getLogger("closet.dev")

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str, expect: bytes | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return expect is None or expect in response.read()
    except urllib.error.HTTPError:
        return expect is None  # any HTTP answer means the server listens
    except (OSError, ValueError):
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class UploadedJob:
    key: str
    generation: int
    job_id: str


@dataclass
class Watch:
    """Messages pulled from one subscription, kept in arrival order (duplicates included)."""

    subscription: str
    items: list = field(default_factory=list)
    attributes: list = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    future: object = None

    def add(self, item, attributes: dict[str, str]) -> None:
        with self.cond:
            self.items.append(item)
            self.attributes.append(attributes)
            self.cond.notify_all()

    def wait(self, predicate: Callable, timeout: float):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def snapshot(self) -> list:
        with self.cond:
            return list(self.items)


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
        self.supervise = supervise
        self.prepare = prepare
        self.function_ports: dict[str, int] = {}
        self.front_ports: dict[str, int] = {}  # strict GCS front: admin, public and one per function
        self.push_port = 0
        self.restarts: list[tuple[str, int | None]] = []  # (function, exit code) per restart
        self.memory_kills: list[tuple[str, int]] = []  # (function, bytes) per process group over its memory
        self._procs_lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
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
        self.ready_timeout_s = ready_timeout_s
        self.watch_enabled = watch
        self.write_state = write_state
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="closet-dev-"))
        self.log_dir = self.workdir / "logs"
        self.procs: list[Proc] = []
        self.functions: dict[str, str] = {}  # function name -> base URL
        self.folders: dict[str, Path] = {}  # function name -> its unpacked zip
        self.venvs: dict[str, Path] = {}  # function name -> the environment its requirements made
        self.python = None
        self.watches: dict[str, Watch] = {}
        self.pubsub_port = self.gcs_port = 0
        self._publisher = self._subscriber = self._storage = None
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

    def spec(self, name: str):
        """A served function's declaration (shared.topology.FunctionSpec)."""
        return next(spec for spec in self.specs if spec.name == name)

    def topic_named(self, entry: str) -> str:
        """A `publishes`/`topic` entry: a stage's name (its topic) or a key of topology.json's topics."""
        stage = next((s for s in self.stages if s["name"] == entry), None)
        return stage["topic"] if stage else self.raw["topics"][entry]

    def topic_of(self, stage: str) -> str:
        return next(s["topic"] for s in self.stages if s["name"] == stage)

    @property
    def pubsub_host(self) -> str:
        return f"127.0.0.1:{self.pubsub_port}"

    @property
    def gcs_upstream_url(self) -> str:
        """fake-gcs-server itself (no checks)."""
        return f"http://127.0.0.1:{self.gcs_port}"

    @property
    def gcs_url(self) -> str:
        """Storage as the project owner sees it (the test harness, `closet-pipeline upload`)."""
        return f"http://127.0.0.1:{self.front_ports['admin']}" if self.strict else self.gcs_upstream_url

    @property
    def public_gcs_url(self) -> str:
        """Where signed URLs point: the strict front's port that serves signed URLs only."""
        return f"http://127.0.0.1:{self.front_ports['public']}" if self.strict else self.gcs_upstream_url

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
            self._start_pubsub()
            os.environ["PUBSUB_EMULATOR_HOST"] = self.pubsub_host  # the clients in this process too
            from google.cloud import pubsub_v1

            self._publisher = pubsub_v1.PublisherClient()
            self._subscriber = pubsub_v1.SubscriberClient()
            for topic in self.all_topics():
                self._publisher.create_topic(name=self._topic_path(topic))
            self._start_gcs()
            self._build_zips()
            self.function_ports = {spec.name: free_port() for spec in self.specs}
            self._write_keys()
            if self.strict:
                self._start_front()
            self._create_buckets()
            self._start_functions()
            self._create_subscriptions()
            if self.watch_enabled:
                self.watches["progress"] = self._watch(self.progress_topic, "dev-watch-progress", _progress_doc)
                self.watches["results"] = self._watch(self.results_topic, "dev-watch-results", _result_doc)
                self.watches["dead_letter"] = self._watch(self.dead_letter_topic, "dev-watch-dead-letter", _raw)
                for subscriber in self.subscribers:
                    topic = self.topic_named(subscriber["deadLetterTopic"])
                    self.watches[f"{subscriber['name']}_dead_letter"] = self._watch(
                        topic, f"dev-watch-{topic}", _raw)
            if self.supervise:
                self._supervisor = threading.Thread(target=self._supervise, name="closet-dev-supervisor", daemon=True)
                self._supervisor.start()
            if self.write_state:
                self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        out = open(log_path, "ab")
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 cwd=str(cwd or REPO_ROOT), start_new_session=True)
        out.close()
        proc = Proc(name, popen, log_path)
        with self._procs_lock:
            self.procs.append(proc)
        return proc

    def _wait_ready(self, proc: Proc, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not proc.alive():
                raise TopologyError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            if check():
                return
            time.sleep(0.1)
        raise TopologyError(f"{proc.name} not ready after {self.ready_timeout_s}s:\n{proc.tail()}")

    def _start_pubsub(self) -> None:
        java = shutil.which("java") or "java"
        self.pubsub_port = free_port()
        proc = self._spawn("pubsub-emulator", [java, "-jar", pubsub_jar(), "--host=127.0.0.1",
                                               f"--port={self.pubsub_port}"], dict(os.environ))
        self._wait_ready(proc, lambda: _http_ok(f"http://{self.pubsub_host}/", b"Ok"))

    def _start_gcs(self) -> None:
        self.gcs_port = free_port()
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": self.pubsub_host}
        argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.gcs_port),
                "-backend", "memory", "-external-url", self.gcs_upstream_url,
                "-public-host", f"127.0.0.1:{self.gcs_port}",
                "-event.pubsub-project-id", self.project, "-event.pubsub-topic", self.ingest_topic,
                "-event.object-prefix", self.raw.get("uploadPrefix", "uploads/"), "-event.list", "finalize"]
        proc = self._spawn("fake-gcs-server", argv, env)
        self._wait_ready(proc, lambda: _http_ok(f"{self.gcs_upstream_url}/storage/v1/b"))

    def _write_keys(self) -> None:
        """A service-account key file per function: it signs that function's URLs, and the strict
        front knows its public key and whose rights its URLs carry."""
        from closet_pipeline.dev.keys import generate_service_account_info

        keys = self.workdir / "keys"
        keys.mkdir(exist_ok=True)
        self.key_files: dict[str, Path] = {}
        self.signer_emails: dict[str, str] = {}
        for name in self.function_ports:
            email = f"{name.replace('_', '-')}@{self.project}.iam.gserviceaccount.com"
            path = keys / f"{name}.json"
            path.write_text(json.dumps(generate_service_account_info(self.project, email)))
            path.chmod(0o600)
            self.key_files[name], self.signer_emails[name] = path, email

    def _start_front(self) -> None:
        """The strict GCS front and the push front, one process (closet_pipeline/dev/strict_gcs.py)."""
        self.front_ports = {name: free_port() for name in ("admin", "public", *self.function_ports)}
        self.push_port = free_port()
        config = {
            "upstream": self.gcs_upstream_url,
            "listeners": self.front_ports,
            "rights": {spec.name: {"read": [self.buckets[a] for a in spec.reads],
                                   "write": [self.buckets[a] for a in spec.writes],
                                   "createOnly": spec.kind == HTTP}
                       for spec in self.specs},
            "signers": {self.signer_emails[name]: {"principal": name, "keyFile": str(self.key_files[name])}
                        for name in self.function_ports},
            "rate": {"perSecond": float(self.env.get("CLOSET_DEV_WRITES_PER_S", "1")),
                     "burst": float(self.env.get("CLOSET_DEV_WRITE_BURST", "2"))},
            "push": {"port": self.push_port, "project": self.project, "pubsub": self.pubsub_host,
                     "subscriptions": self._push_policies(),
                     "functions": {name: f"http://127.0.0.1:{port}" for name, port in self.function_ports.items()},
                     "timeouts": {spec.name: spec.timeout_s for spec in self.specs}},
        }
        path = self.workdir / "strict-front.json"
        path.write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1", "PUBSUB_EMULATOR_HOST": self.pubsub_host}
        proc = self._spawn("strict-front", [sys.executable, "-m", "closet_pipeline.dev.strict_gcs", str(path)], env)
        self._wait_ready(proc, lambda: _http_ok(f"{self.gcs_url}/storage/v1/b")
                         and _http_ok(f"http://127.0.0.1:{self.push_port}/"))

    def _pushed(self) -> list:
        """The served functions Pub/Sub pushes to, with their subscription's id and topic id."""
        found = []
        for spec in self.specs:
            if spec.source_topic is None:
                continue
            topic = self.prefix + spec.source_topic
            name = f"{topic}-push" if spec.kind != SUBSCRIBER else f"{topic}-{spec.name}-push"
            found.append((spec, name, topic))
        return found

    def _push_policies(self) -> dict:
        """Per push subscription, what the push front enforces as Pub/Sub does: the declared retry
        policy, the delivery attempts before dead-lettering, the dead-letter topic."""
        return {self._subscription_path(name): {
            "function": spec.name, "minimumBackoffSeconds": spec.retry.minimum_backoff_s,
            "maximumBackoffSeconds": spec.retry.maximum_backoff_s,
            "maxDeliveryAttempts": spec.retry.max_delivery_attempts,
            "deadLetterTopic": self._topic_path(self.prefix + spec.dead_letter_topic) if spec.dead_letter_topic else None,
        } for spec, name, _ in self._pushed()}

    def _create_buckets(self) -> None:
        client = self.storage_client()
        for bucket in self.buckets.values():
            client.create_bucket(bucket)

    def function_env(self) -> dict[str, str]:
        """What every function's process gets: the settings and the emulators, nothing of this
        checkout (no PYTHONPATH, no virtual environment: each runs from its own zip and environment)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CLOSET_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(self.env)
        env.update({
            "STORAGE_EMULATOR_HOST": self.gcs_url,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "PYTHONUNBUFFERED": "1",
        })
        if MODEL_FUNCTION in self.folders:
            # As Terraform sets it for every function (/workspace/...): the optimised graph in
            # remove_background's zip; the same string everywhere, since ingest's cache fingerprint covers it.
            env["CLOSET_MODEL_PATH"] = str(self.folders[MODEL_FUNCTION] / MODEL_ARCNAME)
        return env

    def _build_zips(self) -> None:
        """Each served function's zip, built as `make package` builds it but from the working tree,
        unpacked, and its environment made from its requirements.txt alone (cached by their hash)."""
        from closet_pipeline import function_envs, packaging

        names = [spec.name for spec in self.specs]
        try:
            built = packaging.build_all(self.workdir / "zips", names=names, rev=None)
        except packaging.PackagingError as exc:
            raise TopologyError(f"cannot build the function zips: {exc}") from None
        self.python = function_envs.runtime_python()
        log.info(self.python.note)
        for name, path in built.items():
            folder = function_envs.unpack(path, self.workdir / "functions" / name)
            if self.prepare is not None:
                self.prepare(name, folder)
            try:
                self.venvs[name] = function_envs.environment(folder / "requirements.txt", self.python)
            except function_envs.EnvironmentFailed as exc:
                raise TopologyError(f"function {name}: {exc}") from None
            self.folders[name] = folder

    def _function_argv(self, name: str, port: int) -> list[str]:
        from closet_pipeline import function_envs

        return function_envs.server_argv(self.venvs[name], self.spec(name), "127.0.0.1", port)

    def _function_env(self, name: str) -> dict[str, str]:
        from shared.adapters.blobstore.gcs import PUBLIC_ENDPOINT_ENV
        from shared.adapters.bus.pubsub import ALLOWED_TOPICS_ENV

        env = self.function_env()
        spec = self.spec(name)
        if spec.kind == HTTP:  # status checks the same bearer secret as upload_url
            env.update(self._upload_url_env())
        # Each function signs URLs with its own generated key (in the cloud: IAM signBlob as itself).
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.key_files[name])
        env[PUBLIC_ENDPOINT_ENV] = self.public_gcs_url
        # One request at a time where production allows one (max_instance_request_concurrency);
        # functions-framework would otherwise serve 4 x cores requests at once per process. A caller
        # may pass THREADS to stand for several instances side by side.
        env["THREADS"] = self.env.get("THREADS", str(spec.concurrency))
        if self.strict:
            env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{self.front_ports[name]}"
            env[ALLOWED_TOPICS_ENV] = ",".join(self.topic_named(entry) for entry in spec.publishes)
            # functions-framework's own timeout: gunicorn kills a sync worker past it (one thread); with
            # several threads the request's thread gets RequestTimeoutException. Either way the push
            # fails and Pub/Sub redelivers, as when Cloud Run cuts a request off at its timeout.
            env["CLOUD_RUN_TIMEOUT_SECONDS"] = str(spec.timeout_s)
            env["THREADED_TIMEOUT_ENABLED"] = "true"
        return env

    def memory_limit(self, name: str) -> int:
        """The declared memory, times the instances one process stands for (THREADS over concurrency)."""
        spec = self.spec(name)
        instances = max(1, int(self.env.get("THREADS", spec.concurrency)) // max(1, spec.concurrency))
        return spec.memory_bytes * instances

    def _start_functions(self) -> None:
        started = []
        for spec in self.specs:
            port = self.function_ports[spec.name]
            proc = self._spawn(f"function-{spec.name}", self._function_argv(spec.name, port),
                               self._function_env(spec.name), cwd=self.folders[spec.name])
            self.functions[spec.name] = f"http://127.0.0.1:{port}"
            started.append((proc, port))
        for proc, port in started:
            self._wait_ready(proc, lambda p=port: _http_ok(f"http://127.0.0.1:{p}/"))

    def _upload_url_env(self) -> dict[str, str]:
        env = {"CLOSET_UPLOAD_URL_SECRET": self.env.get("CLOSET_UPLOAD_URL_SECRET", "dev-upload-secret")}
        self.upload_url_secret = env["CLOSET_UPLOAD_URL_SECRET"]
        return env

    def _create_subscriptions(self) -> None:
        """One push subscription per pushed function, with its declared ack deadline. Strict, the push
        front applies the declared retry policy and dead-letter topic (the emulator's own backoff is
        not Pub/Sub's: asked for 10-60 s it redelivers after about 1, 17, 17 and 24 s), so the
        emulator is told to redeliver every second and the front holds each delivery back until its
        backoff has passed; not strict, the emulator's own policies stand in."""
        from google.cloud.pubsub_v1 import types
        from google.protobuf import duration_pb2

        def seconds(value: float):
            return duration_pb2.Duration(seconds=int(value))

        for spec, name, topic in self._pushed():
            request = {"name": self._subscription_path(name), "topic": self._topic_path(topic),
                       "push_config": {"push_endpoint": self._push_endpoint(spec.name, topic)},
                       "ack_deadline_seconds": self.declaration.ack_deadline_s(spec)}
            if self.strict:
                request["retry_policy"] = types.RetryPolicy(minimum_backoff=seconds(1), maximum_backoff=seconds(1))
            else:
                request["retry_policy"] = types.RetryPolicy(minimum_backoff=seconds(spec.retry.minimum_backoff_s),
                                                            maximum_backoff=seconds(spec.retry.maximum_backoff_s))
                if spec.dead_letter_topic:
                    request["dead_letter_policy"] = types.DeadLetterPolicy(
                        dead_letter_topic=self._topic_path(self.prefix + spec.dead_letter_topic),
                        max_delivery_attempts=spec.retry.max_delivery_attempts)
            self._subscriber.create_subscription(request=request)

    def _push_endpoint(self, function: str, topic: str) -> str:
        # functions-framework reads the topic into the CloudEvent's source from this path.
        path = f"projects/{self.project}/topics/{topic}"
        if self.strict:  # through the push front, which adds deliveryAttempt
            return f"http://127.0.0.1:{self.push_port}/{function}/{path}"
        return f"{self.functions[function]}/{path}"

    def _write_state(self) -> None:
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(self.describe(), indent=2))

    def describe(self) -> dict:
        return {
            "project": self.project, "gcs": self.gcs_url, "gcsPublic": self.public_gcs_url,
            "gcsUpstream": self.gcs_upstream_url, "strict": self.strict, "pubsub": self.pubsub_host,
            "buckets": self.buckets,
            "topics": {"ingest": self.ingest_topic, "progress": self.progress_topic, "results": self.results_topic,
                       "deadLetter": self.dead_letter_topic},
            "functions": self.functions, "logs": str(self.log_dir), "pid": os.getpid(),
        }

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._supervisor is not None:
            self._supervisor.join(5)
        for watch in self.watches.values():
            try:
                watch.future.cancel()
                watch.future.result(timeout=5)
            except Exception:
                pass
        for client in (self._subscriber, self._publisher):
            try:
                if client is not None and hasattr(client, "close"):
                    client.close()
                elif client is not None:
                    client.stop()
            except Exception:
                pass
        _terminate_all([proc.popen for proc in reversed(self.procs)])
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

    # -- clients -------------------------------------------------------------------------------
    def storage_client(self):
        if self._storage is None:
            self._storage = _storage_client(self.project, self.gcs_url)
        return self._storage

    def _topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def _subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        return self._publisher.publish(self._topic_path(topic), data, **(attributes or {})).result(timeout=30)

    def add_pull_subscription(self, topic: str, name: str) -> str:
        path = self._subscription_path(name)
        self._subscriber.create_subscription(request={"name": path, "topic": self._topic_path(topic),
                                                      "ack_deadline_seconds": 60})
        return path

    def pull(self, subscription: str, timeout: float = 30.0, max_messages: int = 10) -> list:
        """Synchronous pull until at least one message arrives (acked), or [] at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = self._subscriber.pull(request={"subscription": subscription, "max_messages": max_messages},
                                                 timeout=max(1.0, min(5.0, deadline - time.monotonic())))
            except Exception:  # DeadlineExceeded when nothing came
                continue
            if response.received_messages:
                self._subscriber.acknowledge(request={"subscription": subscription,
                                                      "ack_ids": [m.ack_id for m in response.received_messages]})
                return [m.message for m in response.received_messages]
        return []

    def _watch(self, topic: str, name: str, parse: Callable) -> Watch:
        path = self.add_pull_subscription(topic, name)
        watch = Watch(path)

        def callback(message) -> None:
            try:
                item = parse(message.data)
            except Exception:  # keep what cannot be parsed as raw bytes
                item = message.data
            watch.add(item, dict(message.attributes))
            message.ack()

        watch.future = self._subscriber.subscribe(path, callback)
        return watch

    # -- helpers for tests and the CLI ---------------------------------------------------------
    def upload_job(self, data: bytes | str | Path, user_id: str, cloth_id: str, file_name: str,
                   content_type: str | None = None, key: str | None = None,
                   metadata: dict[str, str] | None = None) -> UploadedJob:
        if isinstance(data, (str, Path)):
            data = Path(data).read_bytes()
        key = key or upload_key(user_id, cloth_id, file_name)
        return _upload(self.storage_client(), self.buckets["uploads"], key, data, content_type, metadata)

    def upload(self, data: bytes | str | Path, user_id: str, cloth_id: str, file_name: str,
               content_type: str | None = None) -> str:
        return self.upload_job(data, user_id, cloth_id, file_name, content_type).key

    @property
    def results(self) -> list:
        return self.watches["results"].snapshot()

    @property
    def progress(self) -> list:
        return self.watches["progress"].snapshot()

    @property
    def dead_letters(self) -> list:
        return self.watches["dead_letter"].snapshot()

    def wait_for_result(self, job: str | Callable, timeout: float = 60.0):
        """The first result document of a job (a job id or cloth id), or of any document `job(doc)` accepts."""
        predicate = job if callable(job) else (lambda d, j=job: getattr(d, "job_id", None) == j
                                                or getattr(d, "cloth_id", None) == j)
        found = self.watches["results"].wait(predicate, timeout)
        if found is None:
            raise TimeoutError(f"no result for {job!r} within {timeout}s; logs in {self.log_dir}")
        return found

    def results_for(self, job_id: str) -> list:
        return [d for d in self.results if getattr(d, "job_id", None) == job_id]

    def progress_for(self, job_id: str) -> list:
        return [e for e in self.progress if getattr(e, "job_id", None) == job_id]

    def wait_for_progress(self, predicate: Callable, timeout: float = 60.0):
        return self.watches["progress"].wait(predicate, timeout)

    def list_objects(self, area: str, prefix: str | None = None) -> list[str]:
        client = self.storage_client()
        return sorted(b.name for b in client.list_blobs(self.buckets[area], prefix=prefix))

    def read_object(self, area: str, key: str) -> bytes:
        return self.storage_client().bucket(self.buckets[area]).blob(key).download_as_bytes()

    def function_log(self, name: str) -> str:
        proc = next((p for p in self.procs if p.name == f"function-{name}"), None)
        return proc.log_path.read_text(errors="replace") if proc else ""

    def front_refusals(self) -> list[tuple[str, str, str, int]]:
        """What the strict GCS front refused so far: (listener, method, path, status), from its log."""
        import re

        proc = next((p for p in self.procs if p.name == "strict-front"), None)
        text = proc.log_path.read_text(errors="replace") if proc else ""
        return [(m[1], m[2], m[3], int(m[4])) for m in re.finditer(r"WARNING (\S+) (\S+) (\S+) -> (\d{3}) ", text)]

    def function_pids(self) -> dict[str, int]:
        """Each running function's server process id (read-only; the benchmark reads memory peaks).
        Each server runs in its own session, so this is also the process group of its workers."""
        return {p.name.removeprefix("function-"): p.popen.pid for p in self.procs
                if p.name.startswith("function-") and p.alive()}

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(f"----- {p.name} ({p.log_path})\n{p.tail(lines)}" for p in self.procs)

    # -- fault injection (tests/test_reliability.py) -----------------------------------------------
    def _function_proc(self, name: str) -> Proc:
        procs = [p for p in self.procs if p.name == f"function-{name}"]
        if not procs:
            raise TopologyError(f"function {name} is not running in this topology")
        return procs[-1]

    def kill_function(self, name: str) -> None:
        """SIGKILL a function's process group (gunicorn's master and its worker), as a crashed
        instance: requests in flight get their connection cut, new ones are refused until the
        supervisor (or restart_function) starts it again."""
        proc = self._function_proc(name)
        try:
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.popen.wait(10)

    def restart_function(self, name: str, timeout: float | None = None) -> None:
        """Wait until a killed function runs again: started by the supervisor, or here when the
        topology was made with supervise=False."""
        deadline = time.monotonic() + (timeout or self.ready_timeout_s)
        port = self.function_ports[name]
        while time.monotonic() < deadline:
            proc = self._function_proc(name)
            if proc.alive() and _http_ok(f"http://127.0.0.1:{port}/"):
                return
            if not proc.alive() and not self.supervise:
                self._respawn(name, proc)
            time.sleep(0.2)
        raise TopologyError(f"function {name} did not come back within its timeout:\n{self._function_proc(name).tail()}")

    def _respawn(self, name: str, old: Proc) -> Proc:
        """Start a dead function again on the same port, environment and (appended) log file. The
        port may still be held for a moment by the killed process's sockets: try again then."""
        port = self.function_ports[name]
        argv, env = self._function_argv(name, port), self._function_env(name)
        with self._procs_lock:
            if old in self.procs:
                self.procs.remove(old)
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            proc = self._spawn(f"function-{name}", argv, env, cwd=self.folders[name])
            if self._stopped:  # stop() began meanwhile: do not leave this one behind
                _terminate_all([proc.popen])
                raise TopologyError("topology stopped")
            try:
                self._wait_ready(proc, lambda: _http_ok(f"http://127.0.0.1:{port}/"))
                return proc
            except TopologyError:
                if proc.alive() or time.monotonic() > deadline or self._stopped:
                    raise
                with self._procs_lock:
                    self.procs.remove(proc)
                time.sleep(0.2)

    def _supervise(self) -> None:
        """Start again any function process that died, as Cloud Run starts a new instance. Pub/Sub
        redelivers what it had in flight (its push failed). A function's process group that holds
        more memory than the function declares is killed first, as Cloud Run kills an instance over
        its limit ("Memory limit exceeded")."""
        while not self._stopped:
            with self._procs_lock:
                running = [p for p in self.procs if p.name.startswith("function-") and p.alive()]
            usage = _group_rss({p.popen.pid for p in running})
            for proc in running:
                name = proc.name.removeprefix("function-")
                if usage.get(proc.popen.pid, 0) > self.memory_limit(name):
                    print(f"closet-dev: function {name} holds {usage[proc.popen.pid] >> 20} MiB, over its "
                          f"{self.spec(name).memory}: killed", file=sys.stderr, flush=True)
                    self.memory_kills.append((name, usage[proc.popen.pid]))
                    try:
                        os.killpg(proc.popen.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.popen.wait(10)
            with self._procs_lock:
                dead = [p for p in self.procs if p.name.startswith("function-") and not p.alive()]
            for proc in dead:
                if self._stopped:
                    return
                name = proc.name.removeprefix("function-")
                code = proc.popen.returncode
                print(f"closet-dev: function {name} exited ({code}); starting it again", file=sys.stderr, flush=True)
                self.restarts.append((name, code))  # before: whoever waits may see it answer first
                try:
                    self._respawn(name, proc)
                except TopologyError as exc:
                    log.error("function %s could not be restarted: %s", name, exc)
            time.sleep(0.5)

    # -- the demo web page (closet_pipeline/dev/web.py) -----------------------------------------------------
    def start_web(self, port: int = 0):
        """Serve clients/web/ (the demo page) with a same-origin proxy to upload_url, status and the
        emulated bucket, on a daemon thread of this process; `self.web.stop()` stops it."""
        from closet_pipeline.dev.web import DevWeb

        self.web = DevWeb(self.functions, self.public_gcs_url, auth_token=getattr(self, "upload_url_secret", None),
                          port=port).start()
        return self.web


# -- shared with the `upload` command -------------------------------------------------------------
def _storage_client(project: str, endpoint: str):
    from shared.adapters.blobstore.gcs import storage_client

    return storage_client(project, emulator=endpoint)


def _upload(client, bucket: str, key: str, data: bytes, content_type: str | None,
            metadata: dict[str, str] | None = None) -> UploadedJob:
    """As the app's PUT does; `metadata` are the user's picks (x-goog-meta-category, -image-type)."""
    import mimetypes

    content_type = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
    blob = client.bucket(bucket).blob(key)
    blob.metadata = metadata or None
    blob.upload_from_string(data, content_type=content_type)
    return UploadedJob(key, int(blob.generation), job_id_for(key, blob.generation))


def _group_rss(groups: set[int]) -> dict[int, int]:
    """Resident bytes of each process group (gunicorn's master and workers together), from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    totals = dict.fromkeys(groups, 0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        group, rss = int(fields[2]), int(fields[21])  # pgrp and rss (pages), after the command's ")"
        if group in totals:
            totals[group] += rss * page
    return totals


def _result_doc(data: bytes):
    from shared.documents import ResultDocument

    return ResultDocument.model_validate_json(data)


def _progress_doc(data: bytes):
    from shared.documents import ProgressEvent

    return ProgressEvent.model_validate_json(data)


def _raw(data: bytes) -> bytes:
    return data


def _terminate_all(popens: list[subprocess.Popen], timeout: float = 5.0) -> None:
    """SIGTERM to each process group we created (gunicorn's worker included), SIGKILL to what is
    still there after `timeout`. Each child was started with start_new_session=True, so its process
    group id is its pid: only what we started is signalled."""
    for popen in popens:
        if popen.poll() is None:
            try:
                os.killpg(popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for popen in popens:
        try:
            popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(popen.pid, signal.SIGKILL)  # also reaps a worker that outlived its master
        except (ProcessLookupError, PermissionError):
            pass
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("process %s did not stop", popen.pid)


# -- the CLI ------------------------------------------------------------------------------------
def run_dev(env: dict[str, str] | None = None) -> int:
    """`closet-pipeline dev`: start everything, print how to use it, wait for Ctrl-C."""
    topo = LocalTopology(env, write_state=True, watch=False)
    stop = threading.Event()
    # Explicit handlers: a process started in the background may inherit SIGINT as ignored.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("starting the Pub/Sub emulator, fake-gcs-server and the functions ...", file=sys.stderr)
        topo.start()
        info = topo.describe()
        print(f"Pub/Sub emulator   PUBSUB_EMULATOR_HOST={info['pubsub']}  (project {info['project']})")
        print(f"storage            STORAGE_EMULATOR_HOST={info['gcs']}  (owner rights; signed URLs: {info['gcsPublic']})")
        print(f"                   fake-gcs-server at {info['gcsUpstream']}; strict stand-ins: {info['strict']}")
        print(f"buckets            {', '.join(f'{a}={b}' for a, b in info['buckets'].items())}")
        for name, url in info["functions"].items():
            print(f"function {name:<17} {url}")
        print(f"                   each from its zip in {topo.workdir / 'functions'}; {topo.python.note}")
        if getattr(topo, "upload_url_secret", None):
            print(f"upload_url secret  Authorization: Bearer {topo.upload_url_secret}")
        print(f"demo page          {topo.start_web().url}/demo/")
        print(f"logs               {info['logs']}")
        print(f"state              {STATE_FILE}")
        print(f"\nupload a photo:    {_command()} upload PHOTO --user 1 --cloth 42\n"
              "stop:              Ctrl-C", flush=True)
        while not stop.is_set():
            for proc in list(topo.procs):  # a function that dies is started again by the supervisor
                if not proc.alive() and not proc.name.startswith("function-"):
                    print(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}", file=sys.stderr)
                    return 1
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    except TopologyError as exc:
        print(f"closet-pipeline dev: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", file=sys.stderr)
        topo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_upload(photo: Path, user_id: str, cloth_id: str, *, file_name: str | None = None, gcs: str | None = None,
               pubsub: str | None = None, project: str | None = None, uploads_bucket: str | None = None,
               timeout: float = 300.0, category: str | None = None, image_type: str | None = None) -> int:
    """`closet-pipeline upload`: upload to the running emulated bucket, follow the job, print its result."""
    import uuid

    state = {}
    if STATE_FILE.exists():
        try:
            state = json.loads(STATE_FILE.read_text())
        except ValueError:
            state = {}
    gcs = gcs or os.environ.get("STORAGE_EMULATOR_HOST") or state.get("gcs")
    pubsub = pubsub or os.environ.get("PUBSUB_EMULATOR_HOST") or state.get("pubsub")
    project = project or state.get("project") or os.environ.get("CLOSET_PROJECT_ID") or DEFAULTS["CLOSET_PROJECT_ID"]
    uploads_bucket = (uploads_bucket or state.get("buckets", {}).get("uploads")
                      or os.environ.get("CLOSET_UPLOADS_BUCKET") or DEFAULTS["CLOSET_UPLOADS_BUCKET"])
    topics = state.get("topics") or json.loads(TOPOLOGY_JSON.read_text())["topics"]
    if not gcs or not pubsub:
        print("closet-pipeline upload: no running topology found; start `closet-pipeline dev` or pass --gcs/--pubsub",
              file=sys.stderr)
        return 2
    if not gcs.startswith("http"):
        gcs = f"http://{gcs}"
    try:
        data = photo.read_bytes()
        key = upload_key(user_id, cloth_id, file_name or photo.name)
    except OSError as exc:
        print(f"closet-pipeline upload: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # InvalidObjectPath
        print(f"closet-pipeline upload: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2

    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    subs = {}
    try:
        # Subscribe BEFORE uploading, so nothing the job publishes is missed.
        for kind in ("progress", "results"):
            path = f"projects/{project}/subscriptions/upload-{kind}-{suffix}"
            subscriber.create_subscription(request={"name": path, "topic": f"projects/{project}/topics/{topics[kind]}",
                                                    "ack_deadline_seconds": 30})
            subs[kind] = path
        picks = {UPLOAD_METADATA[field]: value for field, value in (("category", category), ("imageType", image_type))
                 if value}
        job = _upload(_storage_client(project, gcs), uploads_bucket, key, data, None, picks)
        print(f"uploaded gs://{uploads_bucket}/{key} (generation {job.generation}); job {job.job_id}", file=sys.stderr)
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            for kind, path in (("results", subs["results"]), ("progress", subs["progress"])):
                try:
                    response = subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=2)
                except Exception:
                    continue
                if not response.received_messages:
                    continue
                subscriber.acknowledge(request={"subscription": path,
                                                "ack_ids": [m.ack_id for m in response.received_messages]})
                for received in response.received_messages:
                    payload = json.loads(received.message.data)
                    if payload.get("jobId") != job.job_id:
                        continue
                    if kind == "progress":
                        print(f"  {payload['status']:<10} {payload['currentStep']:<20} {payload['progressPercentage']}%",
                              file=sys.stderr)
                    else:
                        result = payload
            if result is not None:  # progress was pulled once more after it: the last events may trail it
                print(json.dumps(result, indent=2))
                return 0 if result.get("success") else 1
        print(f"closet-pipeline upload: no result within {timeout:.0f}s", file=sys.stderr)
        return 1
    finally:
        for path in subs.values():
            try:
                subscriber.delete_subscription(request={"subscription": path})
            except Exception:
                pass
        subscriber.close()


def _command() -> str:
    """How the user can call this CLI again: the venv's script when they didn't activate the venv."""
    script = Path(sys.argv[0])
    if script.name == "closet-pipeline" and script.parent != Path() and shutil.which("closet-pipeline") != str(script):
        return os.path.relpath(script) if script.is_absolute() else str(script)
    return "closet-pipeline"
