"""Blob stores: where images and documents live (GCS, a local folder, or memory for tests)."""

from shared.adapters.blobstore.base import Blob, BlobNotFound, BlobStore, PreconditionFailed

__all__ = ["Blob", "BlobNotFound", "BlobStore", "PreconditionFailed"]
