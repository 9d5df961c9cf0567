"""`closet-pipeline`: process photos on this machine, fetch the model, print the configuration, and
drive the local emulator topology (`dev`, `upload`) and reports."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="closet-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    process = commands.add_parser("process", help="process photos in this process, results under --out")
    process.add_argument("photos", nargs="+", type=Path)
    process.add_argument("--out", type=Path, required=True, help="one folder per photo is written here")
    process.add_argument("--store", type=Path, help="local storage and result cache (default OUT/.store)")
    process.add_argument("--category", choices=["TOP", "BOTTOM", "SHOES", "ACC"], help="the category the user picked")
    process.add_argument("--image-type", choices=["auto", "SINGLE_ITEM", "FULL_BODY"], default="auto",
                         help="what the photo shows; auto: a person in the photo means FULL_BODY")

    fetch = commands.add_parser("fetch-model", help="obtain and verify the IS-Net weights")
    fetch.add_argument("--variant", choices=["small", "medium"], help="default: CLOSET_MODEL_VARIANT")
    fetch.add_argument("--side", type=int, choices=[1024, 896, 768, 640],
                       help="input side; below 1024 also derives that graph (default: CLOSET_MODEL_INPUT_SIDE)")
    fetch.add_argument("--file", type=Path, help="an IS-Net ONNX graph obtained under other terms than the npm "
                       "package's AGPL-3.0; its sha256 must be configured as CLOSET_MODEL_VARIANT=sha256:<hex>")

    commands.add_parser("config", help="print the configuration table (Markdown)")

    commands.add_parser("dev", help="run the cloud topology on local emulators until Ctrl-C")

    upload = commands.add_parser("upload", help="upload a photo to the running `dev` topology and print its result")
    upload.add_argument("photo", type=Path)
    upload.add_argument("--user", required=True, help="user id (letters, digits, '-', '_')")
    upload.add_argument("--cloth", required=True, help="cloth id (letters, digits, '-', '_')")
    upload.add_argument("--name", help="object file name (default: the photo's)")
    upload.add_argument("--gcs", help="fake-gcs-server URL (default: STORAGE_EMULATOR_HOST or .dev/topology.json)")
    upload.add_argument("--pubsub", help="Pub/Sub emulator HOST:PORT (default: PUBSUB_EMULATOR_HOST or .dev/topology.json)")
    upload.add_argument("--project", help="project id (default: .dev/topology.json or CLOSET_PROJECT_ID)")
    upload.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result")
    upload.add_argument("--category", type=str.upper, choices=["TOP", "BOTTOM", "SHOES", "ACC"],
                        help="the user's pick for the garment (sent as the upload's x-goog-meta-category)")
    upload.add_argument("--image-type", type=str.upper, choices=["FULL_BODY", "SINGLE_ITEM"],
                        help="what the photo shows (x-goog-meta-image-type)")

    report = commands.add_parser("report", help="per-stage times (p50, p95, share, bottleneck) of result documents")
    report.add_argument("path", help="a folder (result.json files, recursively) or gs://bucket/prefix")
    report.add_argument("--chart", type=Path, help="also draw the table as a PNG here")

    # Listed here, parsed by closet_pipeline/contract.py (its own --check, --record-examples, --help).
    commands.add_parser("contract", help="regenerate contract/ (JSON Schemas, OpenAPI) from the models", add_help=False)

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["contract"]:
        from closet_pipeline.contract import main as contract_main

        return contract_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from shared.config import get_settings

        settings = get_settings()
    except ValidationError as exc:
        print(f"closet-pipeline: bad configuration:\n{exc}", file=sys.stderr)
        return 2

    if args.command == "config":
        from shared.config import settings_table

        print(settings_table())
        return 0
    if args.command == "fetch-model":
        from closet_pipeline.fetch_model import fetch
        from shared.errors import ModelUnavailable

        try:
            fetch(settings.model_dir, args.variant or settings.model_variant,
                  args.side or settings.model_input_side, source=args.file)
        except ModelUnavailable as exc:
            print(f"closet-pipeline: {exc.message}", file=sys.stderr)
            return 2
        return 0
    if args.command == "dev":
        from closet_pipeline.dev.commands import run_dev

        return run_dev()
    if args.command == "upload":
        from closet_pipeline.dev.commands import run_upload

        return run_upload(args.photo, args.user, args.cloth, file_name=args.name, gcs=args.gcs, pubsub=args.pubsub,
                          project=args.project, timeout=args.timeout, category=args.category,
                          image_type=args.image_type)
    if args.command == "report":
        from closet_pipeline.report import run_report

        return run_report(args.path, args.chart)
    if args.command == "process":
        from closet_pipeline.process import process_photos

        return process_photos(settings, args.photos, args.out, args.store, args.category, args.image_type)
    return 2


if __name__ == "__main__":
    sys.exit(main())
