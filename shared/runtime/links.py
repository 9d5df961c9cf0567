"""The links in a result document. Stored documents (result.json, cache entries) name their files
relative to the job's results folder; links are signed only when a document is handed out (published,
or answered by the status endpoint), so none that the app receives has already expired."""

from __future__ import annotations

from shared.adapters.blobstore import BlobStore
from shared.documents import ResultDocument
from shared.layout import results_prefix


def signed(document: ResultDocument, store: BlobStore) -> ResultDocument:
    """Each file signed once (a file named twice, like the crop standing in for its product shot,
    gets one link; on Cloud Functions each signature is a remote signBlob call)."""
    prefix = results_prefix(document.user_id, document.cloth_id, document.job_id)
    links = {name: store.url(prefix + name) for name in document.urls()}
    return document.with_urls(links.__getitem__)
