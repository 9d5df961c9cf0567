"""`closet-pipeline process`: photos in, one folder of results per photo out.

A photo that fails still gets its folder with a failed result.json; the command fails only when it
cannot run at all (no model, unreadable output folder).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from closet_pipeline.adapters.local_folder import LocalFolderBlobStore
from closet_pipeline.contact_sheet import contact_sheet
from closet_pipeline.local_run import LocalPipeline
from shared.config import Settings
from shared.documents import ResultDocument, SegmentedItem
from shared.errors import PipelineError
from shared.media.image_io import decode, normalise
from shared.messages import Category, ImageType
from shared.topology import load as load_topology

STAGE_ORDER = load_topology().stage_names
STAGE_HEADERS = {"ingest": "ingest", "remove_background": "background", "segment": "segment", "expand": "expand",
                 "deliver": "deliver"}


def process_photos(settings: Settings, photos: list[Path], out: Path, store_dir: Path | None,
                   category: str | None, image_type: str) -> int:
    console = Console(stderr=True)
    console.width = max(console.width, 160)  # the per-stage table and its items need the room, even when piped
    missing = [p for p in photos if not p.is_file()]
    if missing:
        console.print(f"[red]No such photo: {', '.join(map(str, missing))}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    store = LocalFolderBlobStore(store_dir or out / ".store")
    pipeline = LocalPipeline(settings, store)
    try:
        pipeline.warm_up()  # loads the model once: a missing model stops here, with how to fix it
    except PipelineError as exc:
        console.print(f"[red]closet-pipeline: {exc.message}", soft_wrap=True)
        return 2

    results: list[tuple[str, ResultDocument]] = []
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[step]}"), TimeElapsedColumn(), console=console) as bars:
        for photo, name in zip(photos, _unique_names(photos)):
            task = bars.add_task(photo.name[:28], total=100, step="uploading")
            document = pipeline.process_bytes(
                photo.read_bytes(), _safe_file_name(photo.name), cloth_id=_cloth_id(name),
                category=Category(category) if category else None,
                image_type=None if image_type == "auto" else ImageType(image_type),
                on_progress=lambda e, t=task: bars.update(t, completed=e.progress_percentage, step=e.current_step.value.lower()),
            )
            bars.update(task, completed=100, step="done" if document.success else f"failed: {document.error_code}")
            export(document, store, photo, out / name, settings)
            results.append((name, document))
    pipeline.close()
    console.print(summary_table(results))
    console.print(f"Results in {out}/<photo>/: result.json, cutout.png, items/, contact-sheet.png")
    return 0


def export(document: ResultDocument, store: LocalFolderBlobStore, photo: Path, folder: Path, settings: Settings) -> None:
    """Copy a job's outputs into `folder` and write its result.json with links relative to it."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = store.root.as_uri() + "/results/"

    def local_name(url: str) -> str:
        relative = url.removeprefix(prefix).split("/", 3)[3]  # drop {userId}/{clothId}/{jobId}/
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read(url.removeprefix(store.root.as_uri() + "/")).data)
        return relative

    exported = document.with_urls(local_name)
    (folder / "result.json").write_bytes(exported.to_json())
    try:
        original = normalise(photo.read_bytes(), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                             min_side=1, max_side=settings.working_max_side).image
    except PipelineError:
        return  # nothing to show for a file that is not a photo
    cutout = decode((folder / exported.removed_bg_image_url).read_bytes()) if exported.removed_bg_image_url else None
    crops = [(decode((folder / item.url).read_bytes()), item_caption(item)) for item in exported.all_segmented_items]
    contact_sheet(original, cutout, crops).save(folder / "contact-sheet.png")


def item_caption(item: SegmentedItem) -> str:
    """label, category and confidence: "T-Shirt TOP 0.97"."""
    category = item.category.value if item.category else "-"
    confidence = "" if item.confidence is None else f" {item.confidence:.2f}"
    return f"{item.label} {category}{confidence}"


def summary_table(results: list[tuple[str, ResultDocument]]) -> Table:
    table = Table(title="Per-stage times (ms) and the provider that served")
    table.add_column("photo")
    table.add_column("result")
    for stage in STAGE_ORDER:
        table.add_column(STAGE_HEADERS[stage], justify="right")
    table.add_column("total", justify="right")
    table.add_column("type")
    table.add_column("items: label category confidence")
    for name, doc in results:
        status = "cache hit" if doc.cache_hit else ("ok" if doc.success else doc.error_code or "failed")
        cells = []
        for stage in STAGE_ORDER:
            ms = doc.timings.get(stage)
            provider = doc.providers.get(stage)
            cells.append("" if ms is None else f"{ms}" + (f" ({provider})" if provider and stage != "deliver" else ""))
        items = "; ".join(item_caption(item) for item in doc.all_segmented_items)
        kind = doc.image_type.value if doc.image_type else ""
        table.add_row(name, status, *cells, str(sum(doc.timings.values())), kind, items)
    return table


def _unique_names(photos: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for photo in photos:
        stem = photo.stem or "photo"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def _cloth_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64] or "photo"


def _safe_file_name(name: str) -> str:
    return re.sub(r"[/\x00-\x1f]", "_", name)[:200] or "photo"


if __name__ == "__main__":
    sys.exit(2)
