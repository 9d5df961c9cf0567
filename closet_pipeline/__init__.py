"""Tooling around the pipeline: the CLI, the local run, the dev topology, packaging, benchmarks and
training. It imports `shared/`; nothing in `shared/` imports it, and no function's zip carries it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout: functions/, clients/, examples/, ...
