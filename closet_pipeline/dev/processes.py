"""The local topology's processes: each binds 127.0.0.1 on a free port, logs to its own file, runs
in its own process group (start_new_session=True, so its group id is its pid) and is stopped by its
process id (SIGTERM to its group, then SIGKILL): only what was started here is ever signalled."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from closet_pipeline import REPO_ROOT
from closet_pipeline.dev.tools import TopologyError

log = logging.getLogger("closet.dev")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str, expect: bytes | None = None) -> bool:
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


class Processes:
    """Every process one topology started, in start order; `stopped` once stop_all began."""

    def __init__(self, log_dir: Path, ready_timeout_s: float) -> None:
        self.log_dir = log_dir
        self.ready_timeout_s = ready_timeout_s
        self.procs: list[Proc] = []
        self.lock = threading.RLock()
        self.stopped = False

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        out = open(log_path, "ab")
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 cwd=str(cwd or REPO_ROOT), start_new_session=True)
        out.close()
        proc = Proc(name, popen, log_path)
        with self.lock:
            self.procs.append(proc)
        return proc

    def wait_ready(self, proc: Proc, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not proc.alive():
                raise TopologyError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            if check():
                return
            time.sleep(0.1)
        raise TopologyError(f"{proc.name} not ready after {self.ready_timeout_s}s:\n{proc.tail()}")

    def named(self, name: str) -> Proc | None:
        """The latest process started under this name (a restarted function's new one)."""
        with self.lock:
            return next((p for p in reversed(self.procs) if p.name == name), None)

    def forget(self, proc: Proc) -> None:
        with self.lock:
            if proc in self.procs:
                self.procs.remove(proc)

    def stop_all(self) -> None:
        self.stopped = True
        with self.lock:
            popens = [proc.popen for proc in reversed(self.procs)]
        terminate_all(popens)


def kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL a process group we started, and reap its leader."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    popen.wait(10)


def terminate_all(popens: list[subprocess.Popen], timeout: float = 5.0) -> None:
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
