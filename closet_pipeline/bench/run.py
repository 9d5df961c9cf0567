"""`make bench`: how fast the pipeline is on phone photos on this machine, against the model's floor,
a peer (rembg) and the app's current worker, with the targets' verdicts. Writes BENCHMARKS.md and a
chart of where the time goes.

    .venv/bin/python -m closet_pipeline.bench.run --out BENCHMARKS.md          # everything (15-25 min on 2 cores)
    .venv/bin/python -m closet_pipeline.bench.run --quick                      # CI smoke: one photo, one warm run
    .venv/bin/python -m closet_pipeline.bench.run --quick --topology --peer    # a part the quick run skips, on demand

The parts, each in its own module:
- photos (closet_pipeline.bench.photos): phone-sized JPEGs (and one HEIC) made from examples/, cached;
- in-process (closet_pipeline.bench.inprocess): per-stage p50/p95 warm and cold, end to end, floors, ingest
  against plain Pillow, the old way's encoding against ours, messages, a cache hit, each probe in a
  fresh process;
- topology (closet_pipeline.bench.topology): the emulator topology end to end, cold, cache hit, memory,
  throughput;
- peer (closet_pipeline.bench.peer): rembg remove() with the same model file (installed when missing);
- expand policy (closet_pipeline.bench.expand): garments `auto` would send to the generative model;
- report (closet_pipeline.bench.report): targets, BENCHMARKS.md, the chart.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from closet_pipeline import REPO_ROOT

DEFAULT_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"  # the team folder beside the project, when present
DEFAULT_PHOTO_CACHE = Path.home() / ".cache" / "closet-pipeline" / "bench-photos"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m closet_pipeline.bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="the Markdown report")
    parser.add_argument("--chart", type=Path, help="the PNG chart (default: the report's name with .png)")
    parser.add_argument("--json", type=Path, help="also write every raw measurement here (JSON)")
    parser.add_argument("--examples", type=Path, default=REPO_ROOT / "examples", help="source photos (*.jpg)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke: one photo at 12 MP, one warm run, one cold process, 2 expand photos; "
                             "no topology, peer or throughput unless asked for")
    parser.add_argument("--sizes", help="photo sizes in megapixels, comma-separated; the first is the targets' "
                                        "(default 12,3; quick 12)")
    parser.add_argument("--photos", type=int, help="how many example photos (default all; quick 1)")
    parser.add_argument("--runs", type=int, help="warm runs of every photo (default 3; quick 1)")
    parser.add_argument("--cold-runs", type=int, help="fresh processes for the cold samples (default 3; quick 1)")
    parser.add_argument("--extra-runs", type=int, help="samples of each floor and of ingest (default 10; quick 3)")
    parser.add_argument("--topology", action=argparse.BooleanOptionalAction, default=None,
                        help="measure through the emulator topology (default on; quick off)")
    parser.add_argument("--throughput", type=int, help="distinct fresh uploads at once through the topology (default 20; quick 0)")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=None,
                        help="measure rembg remove() (default on; quick off)")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=None,
                        help="the model-settings table, closet_pipeline.bench.floor (default on; quick off)")
    parser.add_argument("--floor-limit", type=int, default=30, help="CCP test photos per model setting")
    parser.add_argument("--no-install-peer", action="store_true", help="do not pip install rembg when it is missing")
    parser.add_argument("--expand-limit", type=int, help="photos for the expand policy, 0 skips (default all; quick 2)")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES,
                        help="the team's fixtures folder (its clothing/ photos judge the expand policy)")
    parser.add_argument("--photo-cache", type=Path, default=DEFAULT_PHOTO_CACHE, help="where generated photos are kept")
    parser.add_argument("--no-heic", action="store_true", help="JPEGs only (no HEIC encoder)")
    args = parser.parse_args(argv)
    quick = args.quick

    def pick(value, full, fast):
        return value if value is not None else (fast if quick else full)

    args.sizes = [int(s) for s in (args.sizes or ("12" if quick else "12,3")).split(",") if s.strip()]
    args.photos = pick(args.photos, None, 1)
    args.runs = max(0, pick(args.runs, 3, 1))
    args.cold_runs = max(1, pick(args.cold_runs, 3, 1))
    args.extra_runs = max(1, pick(args.extra_runs, 10, 3))
    if args.topology is None and args.throughput:  # asking for throughput asks for the topology
        args.topology = True
    args.topology = pick(args.topology, True, False)
    args.throughput = pick(args.throughput, 20, 0) if args.topology else 0
    args.peer = pick(args.peer, True, False)
    args.floor = pick(args.floor, True, False)
    args.expand_limit = pick(args.expand_limit, None, 2)
    args.chart = args.chart or args.out.with_suffix(".png")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _guarded(label: str, fn):
    """Run one optional part; a failure is reported in BENCHMARKS.md instead of stopping the rest."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - any failure of an optional part is a finding, not a crash
        log(f"{label} failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"}


def measure_in_process(photos, args) -> dict:
    from closet_pipeline.bench.inprocess import run_probe

    log(f"in-process: {len(photos)} photo(s), {args.runs} warm run(s), floors and extras (fresh process)")
    probe = run_probe(photos, runs=args.runs, extras=True, extra_runs=args.extra_runs,
                      cache_hits=1 if args.quick else 3)
    colds = [probe]
    for n in range(1, args.cold_runs):
        log(f"in-process: cold sample {n + 1}/{args.cold_runs} (fresh process)")
        colds.append(run_probe(photos[:1], runs=0))
    log("in-process: first photo after a warm-up (fresh process)")
    warmed = run_probe(photos[:1], runs=0, warm_up=True)
    return {"probe": probe, "cold_probes": colds, "warmed_probe": warmed}


def measure_peer(photos_by_size, args, model: Path) -> dict:
    from closet_pipeline.bench.peer import ensure_rembg, run_peer

    missing = ensure_rembg(install=not args.no_install_peer, log=log)
    if missing:
        log(f"peer not available: {missing}")
        return {"error": missing}
    measured = {}
    for size, photos in photos_by_size.items():
        log(f"peer: rembg remove() on {len(photos)} photo(s) at {size} MP "
            "(fresh process; its first import ever compiles numba code)")
        paths = [photo.path for photo in photos]
        measured[size] = _guarded(f"peer at {size} MP", lambda p=paths: run_peer(model, p, max(1, args.runs)))
    return measured


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    from closet_pipeline.bench.photos import expand_policy_photos, make_phone_photos
    from closet_pipeline.bench.report import draw_chart, evaluate_targets, markdown
    from closet_pipeline.bench.system import load_average, machine_line
    from shared.config import Settings
    from shared.media import model_weights

    settings = Settings(cache_enabled=False, expand_policy="never")
    model = model_weights.resolve(settings.model_path, settings.model_dir, settings.model_variant,
                                  settings.model_input_side)
    load_before = load_average()
    sources = sorted(args.examples.glob("*.jpg"))[: args.photos]
    if not sources:
        print(f"no *.jpg photos in {args.examples}", file=sys.stderr)
        return 2

    photos_by_size = {}
    for size in args.sizes:
        log(f"photos: {len(sources)} at {size} MP (cached under {args.photo_cache})")
        photos_by_size[size] = make_phone_photos(sources, size, args.photo_cache, heic=not args.no_heic)

    results: dict = {"main_size": args.sizes[0], "sizes": {}}
    for size, photos in photos_by_size.items():
        results["sizes"][size] = measure_in_process([p.path for p in photos], args)

    from closet_pipeline.bench.ingest_memory import measure as ingest_memory

    log("ingest memory: the worst allowed PNG (fresh process)")
    results["ingest_memory"] = _guarded("ingest memory", ingest_memory)

    results["topology"] = None
    if args.topology:
        from closet_pipeline.bench.topology import measure_topology
        from closet_pipeline.dev.tools import missing_tools

        missing = missing_tools()
        results["topology"] = {"error": missing} if missing else _guarded("topology", lambda: measure_topology(
            photos_by_size, runs=max(1, args.runs), cache_hits=3, throughput=args.throughput, log=log))

    results["peer"] = measure_peer(photos_by_size, args, model) if args.peer else None

    results["floor"] = None
    if args.floor:
        from closet_pipeline.bench import floor

        log(f"floor: model settings on {args.floor_limit} CCP test photos each (masks cached)")
        results["floor"] = _guarded("floor", lambda: floor.report(args.floor_limit, 5, floor.DEFAULT_CACHE))

    results["expand"], results["expand_set"] = None, ""
    if args.expand_limit != 0:
        from closet_pipeline.bench.expand import policy_share

        candidates, description = expand_policy_photos(args.fixtures, [REPO_ROOT / "tests" / "data" / "photos",
                                                                       REPO_ROOT / "examples"])
        chosen = candidates[: args.expand_limit] if args.expand_limit else candidates
        if len(chosen) < len(candidates):
            description += f", the first {len(chosen)} (--expand-limit)"
        log(f"expand policy: {len(chosen)} photo(s)")
        results["expand_set"] = description
        results["expand"] = _guarded("expand policy", lambda: policy_share(chosen, Settings(), log=log))

    load_after = load_average()
    results["meta"] = {
        "command": "python -m closet_pipeline.bench.run " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_line(),
        "load_before": " ".join(f"{x:.1f}" for x in load_before) if load_before else "-",
        "load_after": " ".join(f"{x:.1f}" for x in load_after) if load_after else "-",
        "busy": bool(load_before and load_before[0] > 0.5 * (__import__("os").cpu_count() or 1)),
        "model": (f"{settings.model_variant}, input {settings.model_input_side}, {settings.model_resampling}"
                  if settings.model_path is None else str(settings.model_path)),
        "runs": args.runs, "cold_runs": args.cold_runs, "extra_runs": args.extra_runs, "quick": args.quick,
        "photos": {size: [p.describe() for p in photos] for size, photos in photos_by_size.items()},
        "elapsed_s": time.perf_counter() - started,
    }
    targets = evaluate_targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    chart = None
    try:
        draw_chart(results, args.chart)
        chart = args.chart
    except Exception as exc:  # noqa: BLE001 - the report is still worth writing
        log(f"chart not drawn: {exc}")
    chart_ref = None
    if chart is not None:
        try:
            chart_ref = str(chart.resolve().relative_to(args.out.resolve().parent))
        except ValueError:
            chart_ref = str(chart.resolve())
    text = markdown(results, targets, chart_ref)
    args.out.write_text(text)

    print(f"\nTargets ({args.sizes[0]} MP, local IS-Net, expand off):")
    for target in targets:
        print(f"  - {target.name}: {target.verdict()}")
    took = (time.perf_counter() - started) / 60
    print(f"\nwrote {args.out}" + (f" and {chart}" if chart else "") + f" in {took:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
