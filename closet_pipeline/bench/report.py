"""Turns what closet_pipeline.bench.run measured into the targets' verdicts, BENCHMARKS.md and the chart.

`results` (built by closet_pipeline.bench.run.main) holds, per photo size, the in-process probes
(closet_pipeline.bench.inprocess), and once each: the topology (closet_pipeline.bench.topology), the peer per size
(closet_pipeline.bench.peer) and the expand policy (closet_pipeline.bench.expand); a part that was skipped is None, a
part that could not run is {"error": why}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from closet_pipeline.report import STAGE_ORDER, percentile, summarise

# The app's current worker, per photo (README): 5 min 53 s in all.
APP_WORKER_S = {"background removal (HF Space)": 137, "segmentation": 12, "expand (Gemini)": 151,
                "base64 of every image": 47}
APP_WORKER_TOTAL_S = 353
ROADMAP_TOTAL_S = 110  # the app roadmap's hoped 1 min 50 s (no per-stage split published)
BETWEEN_STAGES = ("cloth-remove-background", "cloth-segment", "cloth-expand", "cloth-deliver")


def p50(values) -> float:
    return percentile(values, 50)


def p95(values) -> float:
    return percentile(values, 95)


def fmt_ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.0f}"


def fmt_bytes(value: float) -> str:
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


# -- targets ------------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    measured: float | None
    limit: float | None
    op: str  # "<=", "<" or ">="
    unit: str
    basis: str = ""  # what was compared
    missing: str = ""  # why it was not measured
    why: str = ""  # when missed: the measured reason

    @property
    def met(self) -> bool | None:
        if self.measured is None or self.limit is None or math.isnan(self.measured) or math.isnan(self.limit):
            return None
        return {"<=": self.measured <= self.limit, "<": self.measured < self.limit,
                ">=": self.measured >= self.limit}[self.op]

    def _show(self, value: float) -> str:
        if self.unit == "ms":
            return f"{value:,.0f} ms"
        if self.unit == "x":
            return f"{value:.2f} x"
        if self.unit == "/min":
            return f"{value:.1f}/min"
        return f"{value:,.0f} {self.unit}"

    def verdict(self) -> str:
        met = self.met
        if met is None:
            return f"not measured: {self.missing or 'no data'}"
        gap = abs(self.limit - self.measured)
        share = f", {100 * gap / abs(self.limit):.0f} %" if self.limit else ""
        if met:
            return (f"met: {self._show(self.measured)} {self.op} {self._show(self.limit)} "
                    f"({self._show(gap)}{share} to spare)")
        return (f"MISSED by {self._show(gap)}{share}: {self._show(self.measured)}, "
                f"target {self.op} {self._show(self.limit)}" + (f". Why: {self.why}" if self.why else ""))


def _err(part) -> str:
    if part is None:
        return "skipped (see the flags)"
    return part.get("error", "no data") if isinstance(part, dict) else "no data"


def evaluate_targets(results: dict) -> list[Target]:
    main = results["main_size"]
    s = size_summary(results["sizes"][main])
    topo = results.get("topology")
    topo_ok = isinstance(topo, dict) and "error" not in topo
    t = topology_summary(topo, main) if topo_ok else None
    targets = [
        Target("end to end in-process, warm <= 1.1 x bare inference + 200 ms", s["e2e_warm_p50"],
               1.1 * s["inference_p50"] + 200 if s["inference_p50"] is not None else None, "<=", "ms",
               "p50s", missing="" if s["inference_p50"] is not None else "no floor measured",
               why=_overhead_why(s)),
        Target("through the emulator topology <= in-process + 1 s", t["e2e_warm_p50"] if t else None,
               s["e2e_warm_p50"] + 1000, "<=", "ms", "p50s, upload done to result event", missing=_err(topo),
               why=_topology_why(s, t, topo.get("hops")) if t else ""),
    ]
    if t and t.get("cache_hit_p50") is not None:
        targets.append(Target("a cache hit < 0.5 s", t["cache_hit_p50"], 500, "<", "ms", "through the topology, p50"))
    else:
        targets.append(Target("a cache hit < 0.5 s (in-process; topology not measured)", s["cache_hit_p50"], 500, "<",
                              "ms", "in-process p50", missing="not measured"))
    peer, why = peer_for(results, main)
    targets.append(Target("at least 2 x faster than rembg remove(), same photos and model",
                          p50([w["ms"] for w in peer["warm"]]) / s["e2e_warm_p50"] if peer else None, 2.0, ">=", "x",
                          "rembg warm p50 / ours in-process warm p50", missing=why))
    ingest = s.get("ingest_vs_plain") or {}
    targets.append(Target("ingest of a 12 MP JPEG <= half a plain Pillow open, rotate, resize and save",
                          ingest.get("ours_p50"), ingest["plain_p50"] / 2 if ingest else None, "<=", "ms", "p50s",
                          missing="no extras measured"))
    targets.append(Target("messages between stages < 2 KB", s["message_max"], 2048, "<", "bytes", "largest message"))
    # One job at a time per process, as deployed (topology.json: concurrency 1 for every stage but
    # expand, and the local functions serve that many at once); the burst's peaks are shown beside.
    memory = topo.get("memory_single") if topo_ok else None
    burst_memory = (topo.get("memory_burst") or {}) if topo_ok else {}
    limits = {"remove_background": 2200, "ingest": 400, "segment": 400, "expand": 400, "deliver": 400}
    for name, limit in limits.items():
        peak = (memory or {}).get(name, {}).get("peak_mb")
        burst_peak = burst_memory.get(name, {}).get("peak_mb")
        basis = "VmHWM of its functions-framework worker, single jobs" + (
            f" (after the burst: {burst_peak:,.0f} MB)" if burst_peak else "")
        targets.append(Target(f"peak RSS of {name} < {limit / 1000:g} GB", peak, limit, "<", "MB", basis,
                              missing=_err(topo) if not memory else "process gone"))
    floor = results.get("floor")
    floor_ok = isinstance(floor, dict) and "error" not in floor
    targets.append(Target("bare inference <= half of 3.46 s (issue 14), at equal quality (docs/floor.md gate)",
                          s["inference_p50"], 3460 / 2, "<=", "ms",
                          "in-process floor p50, the configured model setting" + (
                              f"; the floor table's chosen setting: {floor['chosen'].variant} {floor['chosen'].side} "
                              f"{floor['chosen'].resampling}" if floor_ok else ""),
                          missing="no floor measured", why=_floor_why(floor) if floor_ok else ""))
    targets.append(Target("model session load <= 1 s (the pre-optimised graph packaging ships)",
                          floor["load_ms"] if floor_ok else None, 1000, "<=", "ms", "median wall, floor table",
                          missing=_err(floor)))
    targets.append(Target("cold first photo within 1.5 s of a warm one (in-process, fresh process, no warm-up)",
                          s["cold_penalty"], 1500, "<=", "ms", "cold p50 - warm p50, same photo"))
    if t:
        targets.append(Target("cold first photo within 1.5 s of a warm one (topology, fresh functions after the "
                              "scheduler's warm-up message)", t["cold_warmed_penalty"], 1500, "<=", "ms",
                              "cold - warm p50, same photo (without the warm-up: "
                              f"{fmt_ms(t['cold_penalty'])} ms)" if t["cold_penalty"] is not None else
                              "cold - warm p50, same photo", missing="not measured"))
    burst = topo.get("throughput") if topo_ok else None
    targets.append(Target("at least 25 photos per minute through the topology", burst["per_minute"] if burst else None,
                          25, ">=", "/min", "distinct fresh uploads at once, to the last result",
                          missing=_err(topo) if not topo_ok else "skipped", why=_throughput_why(burst)))
    return targets


def _overhead_why(s: dict) -> str:
    """What the in-process run spends beyond the bare inference, stage by stage (warm p50s)."""
    if s["inference_p50"] is None:
        return ""
    stages = {x.stage: x.p50 for x in s["warm_stages"]}
    around = stages.get("remove_background", 0) - s["inference_p50"]
    others = ", ".join(f"{name} {fmt_ms(ms)} ms" for name, ms in stages.items() if name != "remove_background" and ms)
    return (f"remove_background's own work around the inference (resizes, mask, matting) {fmt_ms(around)} ms; "
            f"the other stages: {others}")


def _topology_why(s: dict, t: dict, hops: list[dict] | None) -> str:
    """What the topology's path adds to the in-process run: pushes, the notification and the
    result's way out (the hop table), and the stages' own extra time in their functions."""
    inside = {x.stage: x.p50 for x in s["warm_stages"]}
    extra = {x.stage: x.p50 - inside.get(x.stage, 0.0) for x in t["stages"] if x.p50 - inside.get(x.stage, 0.0) > 0}
    parts = [f"the stages take {fmt_ms(sum(extra.values()))} ms longer in their functions ("
             + ", ".join(f"{name} +{fmt_ms(ms)}" for name, ms in extra.items())
             + "; each reads its input from and writes its output to the bucket as PNG)"]
    if hops:
        waits = sum(r["waited_ms"] or 0 for r in hops)
        ends = sum(r["forward_ms"] or 0 for r in hops if r["waited_ms"] is None)
        parts.append(f"{len([r for r in hops if r['waited_ms'] is not None])} pushes wait {fmt_ms(waits)} ms in all")
        parts.append(f"the notification and the result's way to the app {fmt_ms(ends)} ms")
    return "; ".join(parts)


def _floor_why(floor: dict) -> str:
    """Which cheaper settings the quality gate refused, and why (docs/floor.md)."""
    today = floor["today"]
    refused = [f"{r.variant} {r.side} px {r.resampling}: {r.cpu_ms / today.cpu_ms:.2f} x the CPU, CCP IoU "
               f"{r.ccp_iou:.3f}, rembg IoU {r.rembg_iou:.3f}"
               for r, ok in zip(floor["rows"], floor["passes"]) if not ok and r.cpu_ms <= 0.6 * today.cpu_ms]
    if not refused:
        return "no setting measured takes half the CPU"
    return ("every setting at about half the CPU or less fails the quality gate (CCP IoU within 0.005 and rembg "
            "IoU >= 0.99): " + "; ".join(refused))


def _throughput_why(burst: dict | None) -> str:
    """The CPU a photo needs against what the cores can give (the burst's own accounting)."""
    used = dict((burst or {}).get("cpu_s") or {})
    if not used or not burst.get("photos"):
        return ""
    used.pop("machine", None)
    per_photo = sum(used.values()) / burst["photos"]
    model = used.get("remove_background", 0.0) / burst["photos"]
    cores = burst.get("cores") or _cores()
    return (f"a photo took {per_photo:.1f} CPU s through the topology, {model:.1f} of them in remove_background "
            f"(the model's pass is most of it); {cores} cores give {cores * 60 / 25:.1f} CPU s per photo at 25 a "
            f"minute, so the ceiling here is {cores * 60 / per_photo:.1f} a minute: 25 needs a cheaper model "
            "pass, which the quality gate refuses (see the floor target)")


# -- summaries -----------------------------------------------------------------------------------------
def peer_for(results: dict, size: int) -> tuple[dict | None, str]:
    """The peer's measurement at a size, or None and why there is none."""
    peer = results.get("peer")
    if peer is None:
        return None, "skipped (see the flags)"
    if "error" in peer:
        return None, f"peer not available: {peer['error']}"
    one = peer.get(size)
    if not one or "error" in one:
        return None, f"peer not available: {(one or {}).get('error', 'not run at this size')}"
    return one, ""


def size_summary(entry: dict) -> dict:
    probe = entry["probe"]
    warm, colds = probe["warm"], [c["cold"] for c in entry["cold_probes"]]
    first = probe["cold"]["photo"]
    warm_e2e = [j["e2e_ms"] for j in warm]
    warm_first = [j["e2e_ms"] for j in warm if j["photo"] == first] or warm_e2e
    floor = probe.get("floor")
    messages = [m for m in probe["messages"] if m["topic"] in BETWEEN_STAGES]
    per_job: dict[str, int] = {}
    for m in messages:
        per_job[m["job_id"]] = per_job.get(m["job_id"], 0) + m["bytes"]
    ingest = probe.get("ingest_vs_plain")
    warmed = entry.get("warmed_probe")
    return {
        "photo": first,
        "warm_stages": summarise([j["timings"] for j in warm])[0],
        "cold_stages": summarise([c["timings"] for c in colds])[0],
        "e2e_warm_p50": p50(warm_e2e), "e2e_warm_p95": p95(warm_e2e), "warm_n": len(warm_e2e),
        "e2e_cold_p50": p50([c["e2e_ms"] for c in colds]), "e2e_cold_p95": p95([c["e2e_ms"] for c in colds]),
        "cold_n": len(colds),
        "cold_penalty": p50([c["e2e_ms"] for c in colds]) - p50(warm_first),
        "cold_after_warm_up": warmed["cold"]["e2e_ms"] if warmed else None,
        "warm_up_ms": warmed.get("warm_up_ms") if warmed else None,
        "startup_p50": p50([c["startup_ms"] for c in entry["cold_probes"]]),
        "inference_p50": p50(floor["inference_ms"]) if floor else None,
        "inference_p95": p95(floor["inference_ms"]) if floor else None,
        "decode_p50": p50(floor["jpeg_decode_ms"]) if floor else None,
        "decode_p95": p95(floor["jpeg_decode_ms"]) if floor else None,
        "cache_hit_p50": p50(probe["cache"]["hit_ms"]) if probe.get("cache") else None,
        "message_max": max((m["bytes"] for m in messages), default=None),
        "message_topics": {topic: max((m["bytes"] for m in messages if m["topic"] == topic), default=0)
                           for topic in BETWEEN_STAGES},
        "message_per_job": p50(list(per_job.values())) if per_job else None,
        "ingest_vs_plain": {"ours_p50": p50(ingest["ours_ms"]), "plain_p50": p50(ingest["plain_ms"]),
                            "ours_p95": p95(ingest["ours_ms"]), "plain_p95": p95(ingest["plain_ms"])}
        if ingest else None,
        "rss_mb": probe.get("peak_rss_mb"),
    }


def topology_summary(topo: dict, size: int) -> dict | None:
    entry = topo["sizes"].get(size)
    if not entry:
        return None
    warm = entry["warm"]
    e2e = [j["e2e_ms"] for j in warm]
    cold = entry.get("cold")
    same = [j["e2e_ms"] for j in warm if cold and j["photo"] == cold["photo"]] or e2e
    hit_jobs = topo.get("cache_hit") or []
    hits = [h["e2e_ms"] for h in hit_jobs]
    warmed = topo.get("cold_warmed")
    warmed_same = [j["e2e_ms"] for j in warm if warmed and j["photo"] == warmed["photo"]] or e2e
    return {
        "cold_warmed_ms": warmed["e2e_ms"] if warmed else None,
        "cold_warmed_penalty": warmed["e2e_ms"] - p50(warmed_same) if warmed else None,
        "warm_up_ms": warmed["warm_up_ms"] if warmed else None,
        "stages": summarise([j["timings"] for j in warm])[0],
        "e2e_warm_p50": p50(e2e), "e2e_warm_p95": p95(e2e), "n": len(e2e),
        "put_p50": p50([j["put_ms"] for j in warm]),
        "cold_ms": cold["e2e_ms"] if cold else None,
        "cold_penalty": cold["e2e_ms"] - p50(same) if cold else None,
        "cache_hit_p50": p50(hits) if hits else None, "cache_hit_p95": p95(hits) if hits else None,
        "cache_hit_ingest_p50": p50([h["timings"].get("ingest", 0) for h in hit_jobs]) if hits else None,
    }


# -- BENCHMARKS.md -----------------------------------------------------------------------------------
def markdown(results: dict, targets: list[Target], chart_name: str | None) -> str:
    meta = results["meta"]
    main = results["main_size"]
    lines = [
        "# Benchmarks",
        "",
        f"- **Command:** `{meta['command']}`",
        f"- **Date:** {meta['date']} (took {meta['elapsed_s'] / 60:.1f} min)",
        f"- **Machine:** {meta['machine']}",
        f"- **Load average** before/after: {meta['load_before']} / {meta['load_after']}"
        + ("  **(the machine was busy: these timings are noisy)**" if meta.get("busy") else ""),
        f"- **Settings:** local IS-Net {meta['model']}, expand off (policy never), cache off for processing runs "
        "(on for the cache-hit runs), PNG outputs.",
        f"- **Runs:** {meta['runs']} warm run(s) of every photo, {meta['cold_runs']} fresh process(es) for cold "
        f"samples, {meta['extra_runs']} samples of each floor" + (" (`--quick`)" if meta.get("quick") else ""),
        "- **Photos** (made from the CC0 photos in examples/, upscaled with sensor-like noise, stored as a phone "
        "does):",
    ]
    for size, names in meta["photos"].items():
        lines += [f"  - {size} MP: " + "; ".join(names)]
    lines += ["", "## Targets", "", f"On the {main} MP photos, local IS-Net, expand off.", "",
              "| target | measured as | verdict |", "| --- | --- | --- |"]
    for target in targets:
        lines.append(f"| {target.name} | {target.basis or '-'} | {target.verdict()} |")
    if chart_name:
        lines += ["", f"![Where the time goes per photo: the app's worker, its roadmap, ours]({chart_name})"]

    for size, entry in results["sizes"].items():
        lines += _size_section(results, size, entry)
    lines += _ingest_section(results["sizes"][main], main)
    lines += _ingest_memory_section(results.get("ingest_memory"))
    lines += _encoding_section(results["sizes"][main], main)
    lines += _topology_sections(results.get("topology"), main)
    lines += _expand_section(results.get("expand"), results.get("expand_set"))
    floor = results.get("floor")
    if floor is not None:
        lines += ["", "## The model's floor: settings against quality (closet_pipeline.bench.floor)", "",
                  floor["markdown"] if "error" not in floor else f"Not measured: {floor['error']}"]
    lines += ["", "## Not measured here", ""] + [f"- {line}" for line in _not_measured(results)]
    lines += ["", "Regenerate: `make bench` (full, about 15-25 minutes on 2 cores) or "
              "`.venv/bin/python -m closet_pipeline.bench.run --quick` (one photo, no topology or peer). Per-stage times of any "
              "result documents: `closet-pipeline report PATH`.", ""]
    return "\n".join(lines)


def _size_section(results: dict, size: int, entry: dict) -> list[str]:
    s = size_summary(entry)
    topo = results.get("topology")
    t = topology_summary(topo, size) if isinstance(topo, dict) and "error" not in topo and topo.get("sizes") else None
    lines = ["", f"## {size} MP photos", "",
             f"Per stage, milliseconds. Warm: {s['warm_n']} job(s) in one process (the model loaded); cold: the "
             f"first photo ({s['photo']}) in {s['cold_n']} fresh process(es), no warm-up. Topology: the same stages "
             "in their functions, stage code only (storage reads and writes included, transport not).", "",
             "| stage | warm p50 | warm p95 | cold p50 | cold p95 | topology warm p50 | topology warm p95 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    warm = {x.stage: x for x in s["warm_stages"]}
    cold = {x.stage: x for x in s["cold_stages"]}
    top = {x.stage: x for x in t["stages"]} if t else {}
    for stage in STAGE_ORDER:
        w, c, tt = warm.get(stage), cold.get(stage), top.get(stage)
        lines.append(f"| {stage} | {fmt_ms(w and w.p50)} | {fmt_ms(w and w.p95)} | {fmt_ms(c and c.p50)} | "
                     f"{fmt_ms(c and c.p95)} | {fmt_ms(tt and tt.p50)} | {fmt_ms(tt and tt.p95)} |")
    lines += ["", "| end to end | p50 ms | p95 ms |", "| --- | ---: | ---: |",
              f"| **in-process, warm** | **{fmt_ms(s['e2e_warm_p50'])}** | {fmt_ms(s['e2e_warm_p95'])} |",
              f"| in-process, cold: first photo after start, no warm-up | {fmt_ms(s['e2e_cold_p50'])} | "
              f"{fmt_ms(s['e2e_cold_p95'])} |"]
    if s["cold_after_warm_up"] is not None:
        lines.append(f"| in-process, first photo after a warm-up (warm-up itself: {fmt_ms(s['warm_up_ms'])} ms) | "
                     f"{fmt_ms(s['cold_after_warm_up'])} | |")
    lines.append(f"| process start (imports, pipeline built; before the cold photo) | {fmt_ms(s['startup_p50'])} | |")
    if t:
        lines += [f"| **emulator topology, warm: upload done to result event** | **{fmt_ms(t['e2e_warm_p50'])}** | "
                  f"{fmt_ms(t['e2e_warm_p95'])} |",
                  f"| emulator topology: the upload's PUT to the bucket (before the above) | "
                  f"{fmt_ms(t['put_p50'])} | |"]
        if t["cold_ms"] is not None:
            lines.append(f"| emulator topology, cold: first photo after the functions started, no warm-up | "
                         f"{fmt_ms(t['cold_ms'])} | |")
        if t["cold_warmed_ms"] is not None:
            lines.append(f"| emulator topology, cold: first photo after the functions started and handled the "
                         f"warm-up message (which took {fmt_ms(t['warm_up_ms'])} ms) | {fmt_ms(t['cold_warmed_ms'])} | |")
        if t["cache_hit_p50"] is not None:
            lines.append(f"| emulator topology, cache hit (same bytes again) | {fmt_ms(t['cache_hit_p50'])} | "
                         f"{fmt_ms(t['cache_hit_p95'])} |")
    if s["cache_hit_p50"] is not None:
        lines.append(f"| in-process, cache hit | {fmt_ms(s['cache_hit_p50'])} | |")
    if s["inference_p50"] is not None:
        lines += [f"| floor: bare onnxruntime inference, prepared tensor at the model's input side | {fmt_ms(s['inference_p50'])} | "
                  f"{fmt_ms(s['inference_p95'])} |",
                  f"| floor: bare Pillow decode of the full JPEG | {fmt_ms(s['decode_p50'])} | "
                  f"{fmt_ms(s['decode_p95'])} |"]
    peer, why = peer_for(results, size)
    if peer:
        ms = [w["ms"] for w in peer["warm"]]
        lines.append(f"| peer: rembg {peer['version']} remove(), dis_custom with the same IS-Net file (rembg normalises by the image's maximum and ImageNet means, we by RGB/255 − 0.5 as IMG.LY ships these weights), PNG saved | "
                     f"{fmt_ms(p50(ms))} | {fmt_ms(p95(ms))} |")
        lines.append(f"| peer: rembg, first photo after its session was created (import "
                     f"{fmt_ms(peer['import_ms'])} ms, session {fmt_ms(peer['session_ms'])} ms, not included) | "
                     f"{fmt_ms(peer['cold']['ms'])} | |")
    lines.append("")
    if s["inference_p50"]:
        ratio = s["e2e_warm_p50"] / s["inference_p50"]
        both = s["e2e_warm_p50"] / (s["inference_p50"] + s["decode_p50"])
        lines.append(f"Ours in-process is **{ratio:.2f} x** the bare inference and {both:.2f} x bare inference plus "
                     f"bare decode ({fmt_ms(s['e2e_warm_p50'] - s['inference_p50'])} ms above the inference).")
    if peer:
        speedup = p50([w["ms"] for w in peer["warm"]]) / s["e2e_warm_p50"]
        lines.append(f"rembg remove() takes **{speedup:.2f} x** our in-process time on the same photos and weights, each with its own pre-processing "
                     "(it returns a full-resolution PNG; we return the 1200 px working size, crops and thumbnails).")
    else:
        lines.append(f"Peer (rembg): {why}.")
    if s["rss_mb"]:
        lines.append(f"Peak RSS of the in-process run (every stage in one process): {s['rss_mb']:,.0f} MB.")
    return lines


def _ingest_section(entry: dict, size: int) -> list[str]:
    s = size_summary(entry)
    ingest = s["ingest_vs_plain"]
    if not ingest:
        return []
    return ["", f"## Ingest of a {size} MP JPEG", "",
            "| | p50 ms | p95 ms |", "| --- | ---: | ---: |",
            f"| plain Pillow: open, ImageOps.exif_transpose, resize to the working size (LANCZOS), save PNG | "
            f"{fmt_ms(ingest['plain_p50'])} | {fmt_ms(ingest['plain_p95'])} |",
            f"| ours: shared.media.image_io.normalise (draft decode, limits, orientation, sRGB) + the working PNG the cloud "
            f"stage writes | {fmt_ms(ingest['ours_p50'])} | {fmt_ms(ingest['ours_p95'])} |",
            "", f"Ours takes {ingest['ours_p50'] / ingest['plain_p50']:.2f} x the plain way's time."]


def _ingest_memory_section(memory: dict | None) -> list[str]:
    if not memory or "error" in memory:
        return []
    return ["", "## Ingest's memory on the worst allowed input", "",
            f"A {memory['side']}x{memory['side']} 16-bit RGBA PNG of {memory['file_bytes']:,} bytes (under every byte "
            f"and pixel limit): peak RSS **{memory['peak_mib']:.0f} MiB** of the {memory['deployed_mib']} MiB ingest is "
            "deployed with, in a fresh process (`python -m closet_pipeline.bench.ingest_memory`). Large non-JPEG "
            "images are shrunk in strips before any full-size copy is made; other functions' peaks are in the "
            "topology section."]


def _encoding_section(entry: dict, size: int) -> list[str]:
    probe = entry["probe"]
    enc = probe.get("encoding")
    if not enc:
        return []
    s = size_summary(entry)
    old_ms, old_bytes = p50(enc["old_ms"]), enc["old_bytes"]
    messages = s["message_per_job"] or 0
    lines = ["", "## The old way's encoding against ours, per job", "",
             f"The app's worker sends the cut-out at the photo's full resolution ({enc['full_size'][0]}x"
             f"{enc['full_size'][1]} RGBA) as a PNG, base64, inside the message. We pass object keys between stages "
             f"and encode the outputs once ({enc['working_size'][0]}x{enc['working_size'][1]} cut-out, one crop per "
             "garment, 256 px WebP thumbnails).", "",
             "| per job | ms (p50) | bytes |", "| --- | ---: | ---: |",
             f"| old: full-resolution PNG of the cut-out, base64 in a JSON message | {fmt_ms(old_ms)} | "
             f"{fmt_bytes(old_bytes)} |"]
    for fmt in ("png", "webp"):
        ours = enc["ours"][fmt]
        lines.append(f"| ours, {fmt.upper()} outputs ({ours['files']} files) + the messages between stages "
                     f"({fmt_bytes(messages)}) | {fmt_ms(p50(ours['ms']))} | {fmt_bytes(ours['bytes'] + messages)} |")
    lines += ["", "Messages between stages (largest seen per topic): "
              + ", ".join(f"`{t}` {b:,} B" for t, b in s["message_topics"].items()) + "."]
    return lines


def _topology_sections(topo, main: int) -> list[str]:
    if not isinstance(topo, dict) or "error" in topo:
        return ["", "## Emulator topology", "", f"Not measured: {_err(topo)}."]
    lines = ["", "## Emulator topology", "", f"Started in {fmt_ms(topo.get('start_ms'))} ms (Pub/Sub emulator, "
             "fake-gcs-server, one functions-framework server per function)."]
    lines += _hops_section(topo.get("hops"), f"one warm {main} MP photo (median of the warm runs)")
    lines += _hops_section(topo.get("hops_cache_hit"), "a cache hit (median of the hits)")
    burst = topo.get("throughput")
    if burst:
        finished = burst.get("finished_ms") or []
        lines += ["", f"**Throughput:** {burst['photos']} uploads of {main} MP photos at once: the last result after "
                  f"{burst['elapsed_ms'] / 1000:.1f} s (uploads done after {burst['uploads_ms'] / 1000:.1f} s) = "
                  f"**{burst['per_minute']:.1f} photos per minute** on {_cores()} cores"
                  + (f"; {burst['failed']} failed" if burst["failed"] else "") + "."
                  + (" Results arrived after (s): " + ", ".join(f"{ms / 1000:.1f}" for ms in finished) + "."
                     if finished else "")
                  + " Locally each function is one process serving as many requests at once as topology.json's "
                  "concurrency allows (one, for every stage but expand): one instance each; in the cloud, "
                  "instances scale out instead."]
        lines += _cores_section(burst)
    single, after = topo.get("memory_single") or {}, topo.get("memory_burst") or {}
    if single:
        lines += ["", "**Peak RSS (VmHWM) of each function's worker**, MB:", "",
                  "| function | after single jobs | after the burst | deployed with |", "| --- | ---: | ---: | --- |"]
        for name, one in single.items():
            burst_peak = (after.get(name) or {}).get("peak_mb")
            deployed = one.get("configured") or "-"
            lines.append(f"| {name} | {fmt_ms(one['peak_mb'])} | {fmt_ms(burst_peak)} | {deployed} |")
    return lines


def _hops_section(rows: list[dict] | None, what: str) -> list[str]:
    """The per-hop table (closet_pipeline/bench/hops.py)."""
    if not rows:
        return []
    lines = ["", f"**Hop by hop, {what}**, ms, from the functions' `hop` log lines (shared/runtime/trace.py). "
             "*waited*: from a message's publish to its push; *decoded*: from the push to its event decoded "
             "(envelope, message, job); *to forward*: from the push to the next message "
             "(or the result) published; of which the stage's own run, and every storage and publish call of the "
             "delivery (calls, ms; outcome records and job markers included); *after*: the delivery's work after "
             "forwarding (progress events, markers), off the photo's path but on its instance.", "",
             "| hop | waited | decoded | to forward | stage | storage calls (ms) | publish calls (ms) | after |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def calls(pair):
        return "-" if not pair else f"{pair[0]} ({pair[1]:,.0f})"

    for row in rows:
        decoded = "-" if row.get("decode_ms") is None else f"{row['decode_ms']:.1f}"
        lines.append(f"| {row['hop']} | {fmt_ms(row['waited_ms'])} | {decoded} | {fmt_ms(row['forward_ms'])} | "
                     f"{fmt_ms(row['stage_ms'])} | {calls(row['storage'])} | {calls(row['publish'])} | "
                     f"{fmt_ms(row['after_ms'])} |")
    total = sum((r["waited_ms"] or 0) + (r["forward_ms"] or 0) for r in rows)
    lines.append(f"| **the path, summed** | | | **{fmt_ms(total)}** | | | | |")
    return lines


def _cores_section(burst: dict) -> list[str]:
    """Where the cores went during the burst: CPU seconds per process, against what the cores had."""
    used = dict(burst.get("cpu_s") or {})
    if not used:
        return []
    machine = used.pop("machine", None)
    available = burst["elapsed_ms"] / 1000 * (burst.get("cores") or _cores())
    lines = ["", f"**Where the cores went during the burst** ({available:,.0f} core-seconds in "
             f"{burst['elapsed_ms'] / 1000:.1f} s on {burst.get('cores') or _cores()} cores), CPU seconds:", "",
             "| process | CPU s | share of the cores | per photo |", "| --- | ---: | ---: | ---: |"]
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.05:
            lines.append(f"| {name} | {seconds:.1f} | {100 * seconds / available:.0f} % | "
                         f"{seconds / burst['photos']:.2f} |")
    if machine is not None:
        others = machine - sum(used.values())
        lines.append(f"| everything else on the machine (other tenants, the kernel) | {max(others, 0):.1f} | "
                     f"{100 * max(others, 0) / available:.0f} % | |")
        lines.append(f"| **the machine, busy** | **{machine:.1f}** | **{100 * machine / available:.0f} %** | |")
    return lines


def _expand_section(expand, description) -> list[str]:
    if not isinstance(expand, dict) or "error" in expand:
        return ["", "## The expand policy", "", f"Not measured: {_err(expand)}."]
    garments = expand["garments"] or 1
    lines = ["", "## The expand policy", "",
             f"On {description}: {expand['photos']} photos, {expand['garments']} garments found by the local "
             "segmenter.",
             "", "| policy | garments sent to the generative model | share |", "| --- | ---: | ---: |",
             f"| always | {expand['always']} | {100 * expand['always'] / garments:.0f} % |",
             f"| auto | {expand['auto']} | {100 * expand['auto'] / garments:.0f} % |", ""]
    reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(expand["reasons"].items()))
    saved = expand["always"] - expand["auto"]
    per_call = APP_WORKER_S["expand (Gemini)"]
    lines.append(f"auto's reasons: {reasons or 'none'}. {expand['photos_with_call']} of {expand['photos']} photos "
                 f"would call the model at least once. auto saves {saved} of {expand['always']} generation calls "
                 f"(at the app's {per_call} s per call, {saved * per_call / 60:.0f} min).")
    if expand["skipped"]:
        lines.append(f"Not counted: {', '.join(expand['skipped'])}.")
    return lines


def _not_measured(results: dict) -> list[str]:
    notes = [
        "Expand with a generative model (Gemini, OpenAI): off in every timing here; it needs an API key and the "
        "network, and takes the provider's time (the app's worker: 2 min 31 s).",
        "Real Cloud Functions: cold starts of a container, network between regions, GCS and Pub/Sub latency. The "
        "emulator topology runs everything on this machine, so its transport times are a floor: a storage call "
        "here takes a few milliseconds, one to GCS tens of them, so the hop table's call counts say what a hop "
        "costs there.",
        "The app roadmap's 1 min 50 s has no per-stage split; it is drawn as one bar.",
        "A GPU (onnxruntime's CUDA provider): this benchmark runs on the CPU only.",
    ]
    parts = {"topology": "The emulator topology", "peer": "The rembg peer", "expand": "The expand policy"}
    for part, label in parts.items():
        value = results.get(part)
        if value is None:
            notes.append(f"{label}: skipped (flags).")
        elif isinstance(value, dict) and "error" in value:
            notes.append(f"{label}: {value['error']}.")
    return notes


def _cores() -> int:
    import os

    return os.cpu_count() or 1


# -- the chart ----------------------------------------------------------------------------------------
COLOURS = {
    "ingest / decode": "#8c564b",
    "background removal": "#1f77b4",
    "segmentation": "#2ca02c",
    "expand (generative)": "#ff7f0e",
    "encoding & delivery": "#9467bd",
    "transport & other": "#7f7f7f",
    "roadmap total (no split)": "#c7c7c7",
}
OUR_STAGES = {"ingest": "ingest / decode", "remove_background": "background removal", "segment": "segmentation",
              "expand": "expand (generative)", "deliver": "encoding & delivery"}


def chart_bars(results: dict) -> list[tuple[str, dict[str, float]]]:
    """(label, {category: seconds}) per configuration, as the app's roadmap drew them."""
    bars = [("App's current worker\n(5 min 53 s)", {
        "background removal": 137, "segmentation": 12, "expand (generative)": 151, "encoding & delivery": 47,
        "transport & other": APP_WORKER_TOTAL_S - sum(APP_WORKER_S.values())}),
        ("App roadmap's hope\n(1 min 50 s)", {"roadmap total (no split)": ROADMAP_TOTAL_S})]
    main = results["main_size"]
    s = size_summary(results["sizes"][main])
    bars.append((f"Ours, in-process\n({main} MP, warm p50)", _ours(s["warm_stages"], s["e2e_warm_p50"])))
    topo = results.get("topology")
    t = topology_summary(topo, main) if isinstance(topo, dict) and "error" not in topo and topo.get("sizes") else None
    if t:
        bars.append((f"Ours, emulator topology\n({main} MP, warm p50)", _ours(t["stages"], t["e2e_warm_p50"])))
    if t and t["cache_hit_p50"] is not None:
        ingest = t["cache_hit_ingest_p50"] or 0
        rest = max(0.0, t["cache_hit_p50"] - ingest)
        bars.append(("Cache hit\n(emulator topology)",
                     {"ingest / decode": ingest / 1000, "transport & other": rest / 1000}))
    elif s["cache_hit_p50"] is not None:
        bars.append(("Cache hit\n(in-process)", {"ingest / decode": s["cache_hit_p50"] / 1000}))
    return bars


def _ours(stages, e2e_ms: float) -> dict[str, float]:
    parts = {OUR_STAGES.get(x.stage, "transport & other"): x.p50 / 1000 for x in stages}
    rest = max(0.0, e2e_ms - sum(x.p50 for x in stages))
    parts["transport & other"] = parts.get("transport & other", 0) + rest / 1000
    return parts


def draw_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = chart_bars(results)
    labels = [label for label, _ in bars]
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.6 + 0.85 * len(bars)), sharey=True,
                             gridspec_kw={"width_ratios": [1.1, 1]})
    ours_max = max(sum(parts.values()) for label, parts in bars if label.startswith(("Ours", "Cache")))
    for ax, limit, title in ((axes[0], APP_WORKER_TOTAL_S * 1.25, "full scale (seconds)"),
                             (axes[1], ours_max * 1.35, f"zoomed to 0-{ours_max * 1.35:.1f} s")):
        for y, (_, parts) in enumerate(bars):
            left = 0.0
            for category in COLOURS:
                width = parts.get(category, 0.0)
                if width > 0:
                    ax.barh(y, width, left=left, color=COLOURS[category], edgecolor="white", linewidth=0.5,
                            hatch="//" if category == "roadmap total (no split)" else None)
                    left += width
            total = sum(parts.values())
            text = f"{int(total // 60)} min {total % 60:.0f} s" if total >= 60 else f"{total:.2f} s"
            if total < limit:
                ax.text(total + limit * 0.01, y, text, va="center", fontsize=8)
            else:  # cut by the zoom: say where it ends
                ax.text(limit * 0.98, y, f"{text} ->", va="center", ha="right", fontsize=8, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5})
        ax.set_xlim(0, limit)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("seconds per photo")
    axes[0].set_yticks(range(len(bars)), labels, fontsize=8)
    axes[0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour, hatch="//" if name.startswith("roadmap") else None)
               for name, colour in COLOURS.items()]
    fig.legend(handles, list(COLOURS), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Where the time goes per photo (stacked per stage; ours: stage p50s, "
                 "'transport & other' = end-to-end p50 minus their sum)", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
