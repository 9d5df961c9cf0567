"""What the benchmark reads from the machine: peak memory of processes, and a line describing it."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return sorted(members)


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
