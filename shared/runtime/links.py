"""The links in a result document. Stored documents (result.json, cache entries) name their files
relative to the job's results folder; links are signed only when a document is handed out (published,
or answered by the status endpoint), so none that the app receives has already expired."""

from __future__ import annotations

from shared.adapters.blobstore import BlobStore
from shared.documents import ResultDocument
from shared.layout import results_prefix
from shared.parallel import each

MAX_PARALLEL_SIGNATURES = 8


def signed(document: ResultDocument, store: BlobStore) -> ResultDocument:
    """Each file signed once (a file named twice, like the crop standing in for its product shot,
    gets one link). On Cloud Functions each signature is a remote signBlob call, so an outfit's
    seventeen links are signed at once rather than one after another."""
    prefix = results_prefix(document.user_id, document.cloth_id, document.job_id)
    names = document.urls()
    links = dict(zip(names, each(lambda name: store.url(prefix + name), names, limit=MAX_PARALLEL_SIGNATURES)))
    return document.with_urls(links.__getitem__)
