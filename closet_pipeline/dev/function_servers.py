"""One functions-framework server per served function, each from its own zip: built as `make
package` builds it (closet_pipeline/packaging.py, from the working tree), unpacked, and run in an
environment installed from that zip's requirements.txt alone (closet_pipeline/function_envs.py), so
a module or a requirement missing from a zip fails here. Each server gets the settings, the
emulators, its own signing key and, strict, its own storage listener, the topics it may publish
to, and its declared timeout; it serves as many requests at once as the function declares."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from closet_pipeline.dev.processes import Proc, Processes, free_port, http_ok, kill_group, terminate_all
from closet_pipeline.dev.tools import TopologyError
from closet_pipeline.packaging import MODEL_ARCNAME, MODEL_FUNCTION
from shared.topology import HTTP

log = logging.getLogger("closet.dev")


@dataclass
class Wiring:
    """Where the functions find the rest: the storage URL the owner uses and the one signed URLs
    carry, the emulator, each function's key file and, strict, each one's storage listener and the
    topics it may publish to (None: not strict)."""

    storage_url: str
    public_url: str
    pubsub_host: str
    key_files: dict[str, Path]
    storage_urls: dict[str, str] | None = None
    allowed_topics: dict[str, list[str]] | None = None


class FunctionServers:
    def __init__(self, processes: Processes, specs: list, workdir: Path, env: dict[str, str],
                 prepare: Callable[[str, Path], None] | None = None) -> None:
        self.processes = processes
        self.specs = specs
        self.workdir = workdir
        self.env = env  # the settings (CLOSET_*) every function gets
        self.prepare = prepare
        self.ports: dict[str, int] = {}  # taken when the zips are built, just before the servers start
        self.urls: dict[str, str] = {}  # function name -> base URL
        self.folders: dict[str, Path] = {}  # function name -> its unpacked zip
        self.venvs: dict[str, Path] = {}  # function name -> the environment its requirements made
        self.python = None
        self.upload_url_secret = env.get("CLOSET_UPLOAD_URL_SECRET", "dev-upload-secret")
        self.wiring: Wiring | None = None

    def spec(self, name: str):
        """A served function's declaration (shared.topology.FunctionSpec)."""
        return next(spec for spec in self.specs if spec.name == name)

    def build(self) -> None:
        """Each served function's zip, built as `make package` builds it but from the working tree,
        unpacked, and its environment made from its requirements.txt alone (cached by their hash)."""
        from closet_pipeline import function_envs, packaging

        try:
            built = packaging.build_all(self.workdir / "zips", names=[spec.name for spec in self.specs], rev=None)
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
        self.ports = {spec.name: free_port() for spec in self.specs}
        self.urls.update({name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()})

    def common_env(self) -> dict[str, str]:
        """What every function's process gets: the settings and the emulators, nothing of this
        checkout (no PYTHONPATH, no virtual environment: each runs from its own zip and environment)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CLOSET_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(self.env)
        env.update({"STORAGE_EMULATOR_HOST": self.wiring.storage_url, "PUBSUB_EMULATOR_HOST": self.wiring.pubsub_host,
                    "PYTHONUNBUFFERED": "1"})
        if MODEL_FUNCTION in self.folders:
            # As Terraform sets it for every function (/workspace/...): the optimised graph in
            # remove_background's zip; the same string everywhere, since ingest's cache fingerprint covers it.
            env["CLOSET_MODEL_PATH"] = str(self.folders[MODEL_FUNCTION] / MODEL_ARCNAME)
        return env

    def env_of(self, name: str) -> dict[str, str]:
        from shared.adapters.blobstore.gcs import PUBLIC_ENDPOINT_ENV
        from shared.adapters.bus.pubsub import ALLOWED_TOPICS_ENV

        env = self.common_env()
        spec = self.spec(name)
        if spec.kind == HTTP:  # status checks the same bearer secret as upload_url
            env["CLOSET_UPLOAD_URL_SECRET"] = self.upload_url_secret
        # Each function signs URLs with its own generated key (in the cloud: IAM signBlob as itself).
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.wiring.key_files[name])
        env[PUBLIC_ENDPOINT_ENV] = self.wiring.public_url
        # One request at a time where production allows one (max_instance_request_concurrency);
        # functions-framework would otherwise serve 4 x cores requests at once per process. A caller
        # may pass THREADS to stand for several instances side by side.
        env["THREADS"] = self.env.get("THREADS", str(spec.concurrency))
        if self.wiring.storage_urls is not None:  # strict
            env["STORAGE_EMULATOR_HOST"] = self.wiring.storage_urls[name]
            env[ALLOWED_TOPICS_ENV] = ",".join(self.wiring.allowed_topics[name])
            # functions-framework's own timeout: gunicorn kills a sync worker past it (one thread); with
            # several threads the request's thread gets RequestTimeoutException. Either way the push
            # fails and Pub/Sub redelivers, as when Cloud Run cuts a request off at its timeout.
            env["CLOUD_RUN_TIMEOUT_SECONDS"] = str(spec.timeout_s)
            env["THREADED_TIMEOUT_ENABLED"] = "true"
        return env

    def argv(self, name: str) -> list[str]:
        from closet_pipeline import function_envs

        return function_envs.server_argv(self.venvs[name], self.spec(name), "127.0.0.1", self.ports[name])

    def memory_limit(self, name: str) -> int:
        """The declared memory, times the instances one process stands for (THREADS over concurrency)."""
        spec = self.spec(name)
        instances = max(1, int(self.env.get("THREADS", spec.concurrency)) // max(1, spec.concurrency))
        return spec.memory_bytes * instances

    def start(self, wiring: Wiring) -> None:
        self.wiring = wiring
        started = [self.processes.spawn(f"function-{spec.name}", self.argv(spec.name), self.env_of(spec.name),
                                        cwd=self.folders[spec.name]) for spec in self.specs]
        for proc, spec in zip(started, self.specs):
            self.processes.wait_ready(proc, lambda url=self.urls[spec.name]: http_ok(f"{url}/"))

    # -- the running servers ---------------------------------------------------------------------
    def running(self) -> list[Proc]:
        with self.processes.lock:
            return [p for p in self.processes.procs if p.name.startswith("function-")]

    def proc(self, name: str) -> Proc:
        proc = self.processes.named(f"function-{name}")
        if proc is None:
            raise TopologyError(f"function {name} is not running in this topology")
        return proc

    def log(self, name: str) -> str:
        proc = self.processes.named(f"function-{name}")
        return proc.log_path.read_text(errors="replace") if proc else ""

    def pids(self) -> dict[str, int]:
        """Each running function's server process id (read-only; the benchmark reads memory peaks).
        Each server runs in its own session, so this is also the process group of its workers."""
        return {p.name.removeprefix("function-"): p.popen.pid for p in self.running() if p.alive()}

    def kill(self, name: str) -> None:
        """SIGKILL a function's process group (gunicorn's master and its worker), as a crashed
        instance: requests in flight get their connection cut, new ones are refused until the
        supervisor (or restart) starts it again."""
        kill_group(self.proc(name).popen)

    def restart(self, name: str, timeout: float | None = None, respawn_dead: bool = False) -> None:
        """Wait until a killed function runs again: started by the supervisor, or here when
        `respawn_dead` (the topology was made with supervise=False)."""
        deadline = time.monotonic() + (timeout or self.processes.ready_timeout_s)
        while time.monotonic() < deadline:
            proc = self.proc(name)
            if proc.alive() and http_ok(f"{self.urls[name]}/"):
                return
            if not proc.alive() and respawn_dead:
                self.respawn(name, proc)
            time.sleep(0.2)
        raise TopologyError(f"function {name} did not come back within its timeout:\n{self.proc(name).tail()}")

    def respawn(self, name: str, old: Proc) -> Proc:
        """Start a dead function again on the same port, environment and (appended) log file. The
        port may still be held for a moment by the killed process's sockets: try again then."""
        argv, env = self.argv(name), self.env_of(name)
        self.processes.forget(old)
        deadline = time.monotonic() + self.processes.ready_timeout_s
        while True:
            proc = self.processes.spawn(f"function-{name}", argv, env, cwd=self.folders[name])
            if self.processes.stopped:  # stop() began meanwhile: do not leave this one behind
                terminate_all([proc.popen])
                raise TopologyError("topology stopped")
            try:
                self.processes.wait_ready(proc, lambda: http_ok(f"{self.urls[name]}/"))
                return proc
            except TopologyError:
                if proc.alive() or time.monotonic() > deadline or self.processes.stopped:
                    raise
                self.processes.forget(proc)
                time.sleep(0.2)
