"""Google Cloud Storage: each area (uploads, work, results, cache) is its own bucket; the key keeps
its area prefix inside the bucket, so `uploads/...` also matches the notification's prefix filter.

The client library retries idempotent calls itself (reads, and writes with a generation
precondition); what still fails transiently is raised as StorageUnavailable, so the message is
redelivered rather than the job failed.
"""

from __future__ import annotations

import datetime
import os
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud import storage

from shared.adapters.blobstore.base import Blob, BlobInfo, BlobNotFound, BlobStore, PreconditionFailed
from shared.errors import InvalidObjectPath, StorageUnavailable
from shared.topology import declaration

# Local topology only: the address signed URLs point at (STORAGE_EMULATOR_HOST is the function's own,
# access-checked endpoint; browsers and the app use this one).
PUBLIC_ENDPOINT_ENV = "CLOSET_EMULATOR_PUBLIC_ENDPOINT"

_TRANSIENT = (gexc.ServiceUnavailable, gexc.TooManyRequests, gexc.InternalServerError, gexc.GatewayTimeout,
              gexc.BadGateway, ConnectionError, TimeoutError)


class GcsBlobStore(BlobStore):
    def __init__(self, client: storage.Client, buckets: dict[str, str], *, signed_url_ttl_s: int | None = None,
                 public_endpoint: str | None = None) -> None:
        self.client = client
        self.buckets = buckets
        self.signed_url_ttl_s = signed_url_ttl_s or declaration().links.result_s  # shared/topology.json
        self.public_endpoint = public_endpoint  # where signed links point (an emulator); None: GCS itself

    def _bucket(self, key: str) -> storage.Bucket:
        area = key.split("/", 1)[0]
        if area not in self.buckets or ".." in key.split("/"):
            raise InvalidObjectPath(f"Refused object key {key!r}.")
        return self.client.bucket(self.buckets[area])

    def _get_blob(self, key: str, generation: int | None) -> storage.Blob:
        try:
            blob = self._bucket(key).get_blob(key, generation=generation)
        except gexc.NotFound:
            blob = None
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Reading {key} failed: {exc}") from exc
        if blob is None:
            raise BlobNotFound(f"No object at {key}" + ("." if generation is None else f" generation {generation}."))
        return blob

    def read(self, key: str, *, generation: int | None = None) -> Blob:
        """One request: the download's headers carry the generation it served and its content type.
        Without `generation`, whichever generation is current when GCS serves it, whole."""
        blob = self._bucket(key).blob(key, generation=generation)
        try:
            data = blob.download_as_bytes()
        except gexc.NotFound:
            raise BlobNotFound(f"No object at {key}" + ("." if generation is None else f" generation {generation}.")) from None
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Reading {key} failed: {exc}") from exc
        return Blob(data, int(blob.generation), blob.content_type or "application/octet-stream")

    def stat(self, key: str, *, generation: int | None = None) -> BlobInfo:
        blob = self._get_blob(key, generation)
        return BlobInfo(int(blob.size or 0), blob.generation, blob.content_type or "application/octet-stream",
                        dict(blob.metadata or {}))

    def write(self, key, data, *, content_type, metadata=None, if_generation_match=None) -> int:
        blob = self._bucket(key).blob(key)
        blob.metadata = dict(metadata or {})
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match)
        except gexc.PreconditionFailed:
            raise PreconditionFailed(key) from None
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Writing {key} failed: {exc}") from exc
        return blob.generation

    def list(self, prefix: str) -> list[str]:
        try:
            return sorted(b.name for b in self.client.list_blobs(self._bucket(prefix), prefix=prefix))
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Listing {prefix} failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._bucket(key).blob(key).delete()
        except gexc.NotFound:
            pass
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Deleting {key} failed: {exc}") from exc

    def copy(self, source: str, destination: str) -> None:
        """Server-side: the bytes never pass through the function."""
        source_bucket, target_bucket = self._bucket(source), self._bucket(destination)
        try:
            source_bucket.copy_blob(source_bucket.blob(source), target_bucket, destination)
        except gexc.NotFound:
            raise BlobNotFound(f"No object at {source}.") from None
        except _TRANSIENT as exc:
            raise StorageUnavailable(f"Copying {source} failed: {exc}") from exc

    def url(self, key: str) -> str:
        """A V4 signed GET link, also against an emulator: it carries the signing time and expires,
        as in the cloud (the local strict front checks both)."""
        identity = signing_identity(self.client)
        if self.public_endpoint:
            identity["api_access_endpoint"] = self.public_endpoint
        return self._bucket(key).blob(key).generate_signed_url(
            version="v4", expiration=datetime.timedelta(seconds=self.signed_url_ttl_s), method="GET", **identity,
        )


def signing_identity(client: storage.Client) -> dict:
    """How a V4 URL gets signed: with a key file when GOOGLE_APPLICATION_CREDENTIALS names one (the
    local topology generates one per function), else through IAM signBlob, since a Cloud Function's
    credentials hold no private key (that needs roles/iam.serviceAccountTokenCreator on itself).
    Against an emulator the URL points at PUBLIC_ENDPOINT_ENV (the local strict front), not at the
    function's own storage endpoint."""
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        public = os.environ.get(PUBLIC_ENDPOINT_ENV)
        return {"credentials": _key_file_signer(key_file), **({"api_access_endpoint": public} if public else {})}
    credentials = client._credentials
    if hasattr(credentials, "sign_bytes") and getattr(credentials, "signer_email", None):
        return {}
    if not credentials.valid:  # a token is good for an hour: not a metadata-server call per link
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())
    return {"service_account_email": credentials.service_account_email, "access_token": credentials.token}


@lru_cache(maxsize=1)
def _key_file_signer(key_file: str):
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(key_file)


def storage_client(project: str, *, emulator: str | None = None) -> storage.Client:
    """The runtime's credentials in the cloud; unauthenticated against an emulator (STORAGE_EMULATOR_HOST)."""
    emulator = emulator or os.environ.get("STORAGE_EMULATOR_HOST")
    if not emulator:
        return storage.Client(project=project)
    from google.auth.credentials import AnonymousCredentials

    return storage.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator})


def store_from_settings(settings) -> GcsBlobStore:
    """The store every function uses: one bucket per area, links signed for the configured time."""
    buckets = {"uploads": settings.uploads_bucket, "work": settings.work_bucket,
               "results": settings.results_bucket, "cache": settings.cache_bucket}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    public = (os.environ.get(PUBLIC_ENDPOINT_ENV) or emulator) if emulator else None
    return GcsBlobStore(storage_client(settings.project_id), buckets, signed_url_ttl_s=settings.signed_url_ttl_s,
                        public_endpoint=public)
