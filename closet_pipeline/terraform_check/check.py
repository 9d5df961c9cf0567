"""init, validate and plan a copy of terraform/ against the stand-in providers, offline.

    python -m closet_pipeline.terraform_check [--var-file FILE] [--keep DIR]

The copy gets what a real run has: shared/topology.json beside it and the zips `make package` built
(build/functions, linked, not copied): no placeholders, so a declared function without a zip fails
here, as `terraform plan` would. Its partial `backend "gcs" {}` is overridden by a local backend
(backend_override.tf), the usual way to plan without the bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from closet_pipeline.terraform_check.plugins import REPO
from shared.topology import declaration

ZIPS = REPO / "build" / "functions"


class TerraformMissing(RuntimeError):
    pass


class ZipsMissing(RuntimeError):
    """A declared function has no zip: `make package` did not run, or not since the function was added."""


class TerraformFailed(RuntimeError):
    def __init__(self, command: list[str], done: subprocess.CompletedProcess[str]):
        self.command = command
        self.stdout = done.stdout
        self.stderr = done.stderr
        super().__init__(f"terraform {' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if found is None:
        raise TerraformMissing(
            "terraform is not on PATH: install Terraform >= 1.9 (https://developer.hashicorp.com/terraform/install)"
        )
    return found


ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull, "TF_INPUT": "0"}


@dataclass
class Workspace:
    """A copy of the repository's terraform/ (and what it reads) under root."""

    root: Path

    @property
    def tf_dir(self) -> Path:
        return self.root / "terraform"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [terraform_binary(), *args]
        done = subprocess.run(
            command,
            cwd=self.tf_dir,
            env={**os.environ, **ENV},
            check=False,  # the return code is read below
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise TerraformFailed(list(args), done)
        return done

    def init(self, plugin_dir: Path) -> None:
        self.run("init", "-no-color", "-input=false", f"-plugin-dir={plugin_dir}")

    def validate(self) -> dict[str, Any]:
        """`terraform validate -json`: {"valid": ..., "diagnostics": [...]} (it exits 1 when invalid)."""
        done = subprocess.run(
            [terraform_binary(), "validate", "-json", "-no-color"],
            cwd=self.tf_dir,
            env={**os.environ, **ENV},
            check=False,  # the return code is read below
            capture_output=True,
            text=True,
            timeout=300,
        )
        return json.loads(done.stdout)

    def plan(self, *var_args: str, name: str = "plan") -> dict[str, Any]:
        """Plan into a file, and that plan as `terraform show -json` gives it."""
        plan_file = f"{name}.tfplan"
        self.run("plan", "-no-color", "-input=false", "-lock=false", f"-out={plan_file}", *var_args, timeout=600)
        return json.loads(self.run("show", "-json", "-no-color", plan_file).stdout)


def missing_zips(zips: Path = ZIPS) -> list[str]:
    return [name for name in declaration().names if not (Path(zips) / f"{name}.zip").is_file()]


def copy_config(dest: Path, repo: Path = REPO, zips: Path = ZIPS) -> Workspace:
    """terraform/ and shared/topology.json copied under dest, with the zips `make package` built."""
    missing = missing_zips(zips)
    if missing:
        raise ZipsMissing(f"no zip in {zips} for {', '.join(missing)}: run `make package` first "
                          "(the plan uploads what it built; there are no placeholders)")
    source = repo / "terraform"
    shutil.copytree(
        source,
        dest / "terraform",
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", "terraform.tfvars", ".terraform.lock.hcl", "*.tfplan"
        ),
    )
    (dest / "shared").mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "shared" / "topology.json", dest / "shared" / "topology.json")
    (dest / "terraform" / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n', encoding="utf-8")
    (dest / "build").mkdir(parents=True, exist_ok=True)
    os.symlink(Path(zips).resolve(), dest / "build" / "functions")
    return Workspace(dest)


def summary(plan: dict) -> list[str]:
    """What the plan creates, one line per resource type: what this command prints, and what
    terraform/README.md quotes (tests/test_terraform.py compares the two)."""
    kinds = Counter(change["type"] for change in plan["resource_changes"] if "create" in change["change"]["actions"])
    return [f"valid; plan creates {sum(kinds.values())} resources:"] + [
        f"  {count:4d} {kind}" for kind, count in sorted(kinds.items())]
