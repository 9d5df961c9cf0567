"""Cloud Run's part locally: a function process that dies is started again (a new instance; Pub/Sub
redelivers what it had in flight, since its push failed), and a function's process group that holds
more memory than the function declares is killed first, as Cloud Run kills an instance over its
limit ("Memory limit exceeded")."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from closet_pipeline.dev.function_servers import FunctionServers
from closet_pipeline.dev.processes import kill_group
from closet_pipeline.dev.tools import TopologyError

log = logging.getLogger("closet.dev")


class Supervisor:
    def __init__(self, servers: FunctionServers) -> None:
        self.servers = servers
        self.processes = servers.processes
        self.restarts: list[tuple[str, int | None]] = []  # (function, exit code) per restart
        self.memory_kills: list[tuple[str, int]] = []  # (function, bytes) per process group over its memory
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="closet-dev-supervisor", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 5) -> None:
        """After the processes were marked stopped: the loop ends within its half-second sleep."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.processes.stopped:
            self.kill_over_memory()
            if not self.restart_dead():
                return
            time.sleep(0.5)

    def kill_over_memory(self) -> None:
        running = [p for p in self.servers.running() if p.alive()]
        usage = group_rss({p.popen.pid for p in running})
        for proc in running:
            name = proc.name.removeprefix("function-")
            if usage.get(proc.popen.pid, 0) > self.servers.memory_limit(name):
                print(f"closet-dev: function {name} holds {usage[proc.popen.pid] >> 20} MiB, over its "
                      f"{self.servers.spec(name).memory}: killed", file=sys.stderr, flush=True)
                self.memory_kills.append((name, usage[proc.popen.pid]))
                kill_group(proc.popen)

    def restart_dead(self) -> bool:
        """Start each dead function again; False when the topology began stopping meanwhile."""
        for proc in [p for p in self.servers.running() if not p.alive()]:
            if self.processes.stopped:
                return False
            name = proc.name.removeprefix("function-")
            code = proc.popen.returncode
            print(f"closet-dev: function {name} exited ({code}); starting it again", file=sys.stderr, flush=True)
            self.restarts.append((name, code))  # before: whoever waits may see it answer first
            try:
                self.servers.respawn(name, proc)
            except TopologyError as exc:
                log.error("function %s could not be restarted: %s", name, exc)
        return True


def group_rss(groups: set[int]) -> dict[int, int]:
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
