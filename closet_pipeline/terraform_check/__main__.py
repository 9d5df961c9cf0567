"""python -m closet_pipeline.terraform_check [--var-file FILE] [--keep DIR]: validate and plan
terraform/ offline against the pinned providers' schemas, with the zips `make package` built in
build/functions; prints what the plan would create (terraform/README.md quotes it)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from closet_pipeline.terraform_check.check import TerraformFailed, TerraformMissing, ZipsMissing, copy_config, summary
from closet_pipeline.terraform_check.plugins import build_plugin_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--var-file", type=Path, help="a .tfvars file (project_id defaults to closet-check)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        try:
            versions = build_plugin_dir(root / "plugins")
            workspace = copy_config(root / "copy")
            workspace.init(root / "plugins")
            validation = workspace.validate()
            if not validation["valid"]:
                for diagnostic in validation["diagnostics"]:
                    print(f"{diagnostic['severity']}: {diagnostic['summary']}: {diagnostic.get('detail', '')}")
                return 1
            var_args = [f"-var-file={args.var_file.resolve()}"] if args.var_file else ["-var=project_id=closet-check"]
            plan = workspace.plan(*var_args)
        except (TerraformMissing, TerraformFailed, ZipsMissing) as error:
            print(error, file=sys.stderr)
            return 1
    print(f"providers: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    print("\n".join(summary(plan)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
