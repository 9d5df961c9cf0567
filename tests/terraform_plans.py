"""What the Terraform tests share: the offline plugin folder, an initialised copy of terraform/ and
its plans (as `terraform show -json` gives them), each built once per test session.

The providers are schema-only stand-ins serving the real google / google-beta 6.50.0 schemas
(closet_pipeline/terraform_check). Nothing here skips: without `terraform`, or without the
packages the stand-ins need, a test fails and says what to install.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TF_DIR = REPO / "terraform"
TOPOLOGY_PATH = REPO / "shared" / "topology.json"
ALL_FEATURES = TF_DIR / "examples" / "all-features.tfvars"
# The stand-in's data sources read an enabled secret version unless told otherwise.
SECRETS_HAVE_VERSIONS = {"google_secret_manager_secret_version": {"enabled": True}}

_built: dict[str, Any] = {}


def require_terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.fail("terraform is not on PATH: install Terraform >= 1.9 to run the Terraform checks", pytrace=False)
    return found


def require_standin() -> None:
    try:
        import msgpack  # noqa: F401
        import tf.runner  # noqa: F401
    except ImportError as error:
        pytest.fail(
            f"the offline provider stand-in needs the PyPI packages tf and msgpack ({error}): "
            "pip install -c constraints.txt msgpack && pip install --no-deps -c constraints.txt tf "
            "(tf's metadata asks for protobuf<6, which google-cloud's >=6.33 excludes; it runs on both)",
            pytrace=False,
        )


def plugin_dir(base: Path) -> tuple[Path, dict[str, str]]:
    """The stand-in plugin folder (built once per session) and the provider versions it serves."""
    if "plugins" not in _built:
        require_terraform()
        require_standin()
        from closet_pipeline.terraform_check.plugins import build_plugin_dir

        folder = base / "terraform-plugins"
        _built["plugins"] = (folder, build_plugin_dir(folder))
    return _built["plugins"]


def workspace(base: Path, name: str = "copy"):
    """A fresh, initialised copy of terraform/ (init only reads the plugin folder)."""
    from closet_pipeline.terraform_check.check import copy_config

    plugins, _ = plugin_dir(base)
    copy = copy_config(base / f"terraform-{name}")
    copy.init(plugins)
    return copy


def shared_workspace(base: Path):
    if "workspace" not in _built:
        _built["workspace"] = workspace(base)
    return _built["workspace"]


@dataclass(frozen=True)
class Change:
    """One resource (or data source read) of a plan."""

    address: str
    module: str  # "" for the root module, e.g. "module.functions[\"ingest\"]" otherwise
    mode: str  # "managed" or "data"
    type: str
    name: str
    index: Any
    actions: list[str]
    after: dict[str, Any]
    after_unknown: dict[str, Any]
    after_sensitive: Any
    provider: str


class Plan:
    """`terraform show -json` of a saved plan, with lookups the tests need."""

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    @cached_property
    def changes(self) -> list[Change]:
        return [
            Change(
                address=c["address"],
                module=c.get("module_address", ""),
                mode=c["mode"],
                type=c["type"],
                name=c["name"],
                index=c.get("index"),
                actions=c["change"]["actions"],
                after=c["change"]["after"] or {},
                after_unknown=c["change"].get("after_unknown") or {},
                after_sensitive=c["change"].get("after_sensitive"),
                provider=c["provider_name"],
            )
            for c in self.raw["resource_changes"]
        ]

    def of_type(self, type_: str, mode: str = "managed") -> list[Change]:
        return [c for c in self.changes if c.type == type_ and c.mode == mode]

    def one(self, address: str) -> Change:
        found = [c for c in self.changes if c.address == address]
        assert len(found) == 1, f"{address}: {len(found)} in the plan"
        return found[0]

    def by_index(self, type_: str, name: str) -> dict[Any, Change]:
        return {c.index: c for c in self.of_type(type_) if c.name == name}

    def functions(self) -> dict[str, Change]:
        """The planned Cloud Function of each topology function, keyed by topology name."""
        found = {}
        for change in self.of_type("google_cloudfunctions2_function"):
            key = json.loads(change.module.removeprefix("module.functions[").removesuffix("]"))
            found[key] = change
        return found

    @property
    def configuration(self) -> dict[str, Any]:
        return self.raw["configuration"]


def plan(base: Path, key: str, *var_args: str, reads: dict[str, Any] | None = None) -> Plan:
    """The plan of the shared workspace for these variables (made once per session and key)."""
    import os

    if key not in _built:
        copy = shared_workspace(base)
        previous = os.environ.get("CLOSET_STANDIN_READS")
        os.environ["CLOSET_STANDIN_READS"] = json.dumps(reads or SECRETS_HAVE_VERSIONS)
        try:
            _built[key] = Plan(copy.plan(*var_args, name=key))
        finally:
            if previous is None:
                os.environ.pop("CLOSET_STANDIN_READS")
            else:
                os.environ["CLOSET_STANDIN_READS"] = previous
    return _built[key]


def default_plan(base: Path) -> Plan:
    return plan(base, "default", "-var=project_id=closet-check")


def full_plan(base: Path) -> Plan:
    return plan(base, "all-features", f"-var-file={ALL_FEATURES}")
