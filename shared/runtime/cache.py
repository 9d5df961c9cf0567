"""The result cache: a finished job's outputs, addressed by the content hash of the upload, what the
upload asked for (its image type) and the settings' fingerprint.

An entry stores file names, never links (links are signed when a result is handed out), and the
model's own categories: the user's pick is applied when a result is served, so one user's pick never
reaches another. A result that fell short of what the settings ask (a product shot whose generation
failed or ran out of time) is not cached: the next upload of the same photo gets another chance.
Whether a generator is configured at all is part of the settings' fingerprint, so a result made
without one is never served once a key is set. A repeat upload is
served by copying the files into its own results folder: no user gets a link into another's.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.adapters.blobstore import BlobNotFound, BlobStore
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ResultDocument
from shared.layout import cache_prefix, results_prefix
from shared.messages import Job
from shared.runtime.trace import each

ENTRY = "result.json"


def save(store: BlobStore, cache_key: str, document: ResultDocument) -> None:
    """Keep a successful result whose links are file names in its job's results folder."""
    prefix, source = cache_prefix(cache_key), results_prefix(document.user_id, document.cloth_id, document.job_id)
    each(lambda name: store.copy(source + name, prefix + name), document.urls())  # at once: one round trip
    # Written last: an entry is visible only once all its files are there.
    store.write(prefix + ENTRY, document.to_json(), content_type="application/json", metadata=OUTPUT_MARKER)


def lookup(store: BlobStore, cache_key: str) -> ResultDocument | None:
    """The entry, if it and all its files are there."""
    prefix = cache_prefix(cache_key)
    try:
        entry = ResultDocument.model_validate_json(store.read(prefix + ENTRY).data)
        each(lambda name: store.stat(prefix + name), entry.urls())
    except BlobNotFound:
        return None
    return entry


def serve(store: BlobStore, cache_key: str, entry: ResultDocument, job: Job, timings: dict[str, int]) -> ResultDocument:
    """The entry re-issued for this job (names, the job's own copies of the files)."""
    prefix = cache_prefix(cache_key)
    destination = results_prefix(job.user_id, job.cloth_id, job.job_id)
    each(lambda name: store.copy(prefix + name, destination + name), entry.urls())
    return entry.model_copy(update={
        "job_id": job.job_id, "cloth_id": job.cloth_id, "user_id": job.user_id,
        "cache_hit": True, "timings": timings, "providers": {"cache": "hit"},
        "upload_generation": job.upload_generation, "uploaded_at": job.uploaded_at,
        "finished_at": datetime.now(timezone.utc),
    }).with_pick(job.category_hint)

