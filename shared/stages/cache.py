"""The result cache, in one place: its key, its lookup, keeping a result and serving one.

An entry is addressed by the content hash of the upload, what the upload asked for (its image type)
and the settings' fingerprint (`fingerprint`: whatever changes a result), so entries made under other
settings are never served. An entry stores file names, never links (links are signed when a result is
handed out), and the model's own categories: the user's pick is applied when a result is served, so
one user's pick never reaches another. A result that fell short of what the settings ask (a product
shot whose generation failed or ran out of time) is not kept: the next upload of the same photo gets
another chance. Whether a generator is configured at all is part of the fingerprint, so a result made
without one is never served once a key is set. A repeat upload is served by copying the files into
its own results folder: no user gets a link into another's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from shared import PIPELINE_VERSION
from shared.adapters.blobstore import BlobNotFound, BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.config import Settings
from shared.documents import ResultDocument
from shared.garment_models import PINS as GARMENT_MODEL_PINS
from shared.layout import cache_prefix, results_prefix
from shared.messages import ImageType, Job
from shared.parallel import each

ENTRY = "result.json"


def fingerprint(settings: Settings) -> str:
    """What changes a result: cache entries made under other settings are never served."""
    relevant = {
        "version": PIPELINE_VERSION,
        "working_max_side": settings.working_max_side,
        "background": list(settings.background_providers),
        "model": str(settings.model_path) if settings.model_path else settings.model_variant,
        "model_input": [settings.model_input_side, settings.model_resampling],
        "segmenter": settings.segmenter,
        "garment_models": sorted(GARMENT_MODEL_PINS.values()),
        "min_garment_pixels": settings.min_garment_pixels,
        # Not whether a key is set: only the expand function holds it, and ingest computes this.
        # Whether a generator can be called at all: a result made without one is final for this
        # configuration, and configuring a key starts another cache.
        "expand": [settings.expand_policy.value, settings.generator, settings.expand_prompt,
                   settings.expand_generation_enabled()],
        "models": [settings.gemini_model, settings.openai_model],
        "output": [settings.output_format, settings.thumbnail_side],
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def key(upload: bytes, image_type: ImageType | None, settings: Settings) -> str:
    """The bytes (and what the upload asks for), so a repeat upload is found before anything is decoded."""
    kind = image_type.value if image_type else "auto"  # not said: the segment stage decides
    content = hashlib.sha256(upload).hexdigest()
    return hashlib.sha256(f"{content}:{kind}:{fingerprint(settings)}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Lookup:
    """An upload's cache key and, on a hit, the entry found under it."""

    store: BlobStore
    key: str
    entry: ResultDocument | None

    def serve(self, job: Job, timings: dict[str, int]) -> ResultDocument:
        """The entry re-issued for this job (names, the job's own copies of the files)."""
        assert self.entry is not None
        prefix = cache_prefix(self.key)
        destination = results_prefix(job.user_id, job.cloth_id, job.job_id)
        each(lambda name: self.store.copy(prefix + name, destination + name), self.entry.urls())
        return self.entry.model_copy(update={
            "job_id": job.job_id, "cloth_id": job.cloth_id, "user_id": job.user_id,
            "cache_hit": True, "timings": timings, "providers": {"cache": "hit"},
            "upload_generation": job.upload_generation, "uploaded_at": job.uploaded_at,
            "finished_at": datetime.now(timezone.utc),
        }).with_pick(job.category_hint)


def lookup(store: BlobStore, settings: Settings, upload: bytes, image_type: ImageType | None) -> Lookup:
    """The upload's key and its entry, if caching is on and the entry and all its files are there."""
    cache_key = key(upload, image_type, settings)
    if not settings.cache_enabled:
        return Lookup(store, cache_key, None)
    prefix = cache_prefix(cache_key)
    try:
        entry = ResultDocument.model_validate_json(store.read(prefix + ENTRY).data)
        each(lambda name: store.stat(prefix + name), entry.urls())
    except BlobNotFound:
        return Lookup(store, cache_key, None)
    return Lookup(store, cache_key, entry)


def save(store: BlobStore, settings: Settings, cache_key: str, document: ResultDocument, *, degraded: bool) -> None:
    """Keep a successful result whose links are file names in its job's results folder, unless caching
    is off or the result fell short of the settings (`degraded`)."""
    if not settings.cache_enabled or degraded:
        return
    prefix, source = cache_prefix(cache_key), results_prefix(document.user_id, document.cloth_id, document.job_id)
    each(lambda name: store.copy(source + name, prefix + name), document.urls())  # at once: one round trip
    # Written last: an entry is visible only once all its files are there.
    store.write(prefix + ENTRY, document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)
