"""A plugin folder for `terraform init -plugin-dir`: one stand-in per provider terraform/ uses.

Layout (Terraform's "unpacked" plugin layout):
  <dest>/registry.terraform.io/hashicorp/<type>/<version>/<os>_<arch>/terraform-provider-<type>_v<version>
an executable shell wrapper that runs `python -m closet_pipeline.terraform_check.standin` with that
provider's schema (schema.json beside it).
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from closet_pipeline import REPO_ROOT
from closet_pipeline.terraform_check import jsii_schema, small_schemas
from closet_pipeline.terraform_check.jsii_schema import ProviderSchema

REPO = REPO_ROOT


@dataclass(frozen=True)
class Provider:
    type: str
    package: str | None = None  # the cdktf package carrying its schema
    schema: ProviderSchema | None = None  # or the schema itself

    def load(self) -> ProviderSchema:
        if self.schema is not None:
            return self.schema
        assert self.package is not None
        return jsii_schema.provider_schema(jsii_schema.assembly_of(self.package))


# Every provider terraform/ declares in required_providers, with the schema its pin is checked against.
PROVIDERS = (
    Provider("google", package="cdktf-cdktf-provider-google"),
    Provider("google-beta", package="cdktf-cdktf-provider-google-beta"),
    Provider("random", schema=small_schemas.RANDOM),
    Provider("time", schema=small_schemas.TIME),
)


def platform_dir() -> str:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    return f"{sys.platform}_{machine}"


def build_plugin_dir(dest: Path, python: str = sys.executable) -> dict[str, str]:
    """Write the stand-ins under dest; returns the version served for each provider type."""
    versions = {}
    for provider in PROVIDERS:
        schema = provider.load()
        version = schema["version"]
        folder = dest / "registry.terraform.io" / "hashicorp" / provider.type / version / platform_dir()
        folder.mkdir(parents=True, exist_ok=True)
        schema_path = folder / "schema.json"
        schema_path.write_text(json.dumps(schema), encoding="utf-8")
        wrapper = folder / f"terraform-provider-{provider.type}_v{version}"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} "
            f"exec {shlex.quote(python)} -m closet_pipeline.terraform_check.standin {shlex.quote(str(schema_path))}\n",
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
        versions[provider.type] = version
    return versions
