"""What the benchmark reads from the machine (peak memory and CPU time of processes, a line describing
it), and how it runs a probe in a fresh interpreter."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from closet_pipeline import REPO_ROOT


def json_probe(module: str, args: list[str], timeout_s: float, what: str) -> dict:
    """Run `python -m module args` in a fresh interpreter (its own cold start and memory peak) and
    return the JSON object on the last line it printed."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout_s,
                          cwd=REPO_ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """VmHWM (the peak resident set) of a process in MB (10^6 bytes), or None when it is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6  # the kernel's kB are KiB
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_group(pgid: int) -> list[int]:
    """The live processes whose process group is `pgid` (a server started in its own session and
    the workers it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields and len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return sorted(members)


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by a process group's live members and the children
    they reaped."""
    ticks = 0
    for pid in process_group(pgid):
        fields = _stat_fields(pid)
        if fields and len(fields) > 14:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def group_peak_rss_mb(pgid: int) -> float | None:
    """The largest VmHWM among a process group's members (gunicorn's worker, not its master)."""
    peaks = [p for p in (peak_rss_mb(pid) for pid in process_group(pgid)) if p is not None]
    return max(peaks) if peaks else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError):
        pass
    return None


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_line() -> str:
    import onnxruntime
    import PIL

    memory = memory_gb()
    ram = f", {memory:.0f} GB RAM" if memory else ""
    return (f"{cpu_model()}, {os.cpu_count()} cores{ram}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, Pillow {PIL.__version__}")
