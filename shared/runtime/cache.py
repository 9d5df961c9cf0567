"""The result cache: a finished job's outputs, addressed by the content hash of the upload and the
settings' fingerprint. A repeat upload is served by copying them into its own results folder, so
no user ever gets a link into another user's results.
"""

from __future__ import annotations

import logging

from shared.adapters.blobstore import BlobNotFound, BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ResultDocument
from shared.layout import cache_prefix, results_prefix
from shared.messages import Job

log = logging.getLogger(__name__)
ENTRY = "result.json"


def save(store: BlobStore, cache_key: str, document: ResultDocument, files: dict[str, str]) -> None:
    """Keep a successful result; `files` maps each output's key to its file name."""
    prefix = cache_prefix(cache_key)
    for key, name in files.items():
        store.copy(key, prefix + name)
    names = {store.url(key): name for key, name in files.items()}
    entry = document.with_urls(lambda url: names[url])  # URLs become names relative to the entry
    # Written last: an entry is visible only once all its files are there.
    store.write(prefix + ENTRY, entry.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)


def serve(store: BlobStore, cache_key: str, job: Job, timings: dict[str, int]) -> ResultDocument | None:
    """The cached result re-issued for this job, with its own copies of the files; None on a miss."""
    prefix = cache_prefix(cache_key)
    try:
        entry = ResultDocument.model_validate_json(store.read(prefix + ENTRY).data)
    except BlobNotFound:
        return None
    destination = results_prefix(job.user_id, job.cloth_id, job.job_id)
    try:
        for name in entry.urls():
            store.copy(prefix + name, destination + name)
    except BlobNotFound:
        log.warning("cache entry %s is incomplete (expired files?); processing the photo again", cache_key)
        return None
    document = entry.with_urls(lambda name: store.url(destination + name)).model_copy(update={
        "job_id": job.job_id, "cloth_id": job.cloth_id, "user_id": job.user_id,
        "cache_hit": True, "timings": timings, "providers": {"cache": "hit"},
        "suggested_category": job.category_hint or entry.suggested_category,
    })
    store.write(destination + "result.json", document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)
    return document
