"""One exception per failure mode, each with a stable machine-readable code: every code the pipeline
produces, and every `errorCode` its HTTP functions answer with (HttpErrorCode), is defined here and
nowhere else (tests/test_layout.py keeps it so).

Permanent errors end the job as failed (the message is acked); transient errors
propagate so the transport retries the message with backoff.
"""

from __future__ import annotations

from enum import Enum

from shared.formats import spoken as _formats


class PipelineError(Exception):
    """Base class. `code` is stable and part of the result contract; `message` is for people."""

    code = "INTERNAL_ERROR"
    retryable = False
    default_message = "Something went wrong while processing the photo."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class PermanentError(PipelineError):
    retryable = False


class TransientError(PipelineError):
    retryable = True
    code = "TRANSIENT_ERROR"
    default_message = "A temporary fault interrupted processing; it will be retried."


# -- bad input -------------------------------------------------------------------------------
class EmptyFile(PermanentError):
    code = "EMPTY_FILE"
    default_message = "The uploaded file is empty."


class FileTooLarge(PermanentError):
    code = "FILE_TOO_LARGE"
    default_message = "The file is larger than the upload limit."


class UnsupportedFormat(PermanentError):
    code = "UNSUPPORTED_FORMAT"
    default_message = f"The file is not a supported image. Upload a {_formats()} photo."


class CorruptImage(PermanentError):
    code = "CORRUPT_IMAGE"
    default_message = "The image is damaged or incomplete and cannot be read."


class ImageTooLarge(PermanentError):
    code = "IMAGE_TOO_LARGE"
    default_message = "The image has too many pixels to process safely."


class ImageTooSmall(PermanentError):
    code = "IMAGE_TOO_SMALL"
    default_message = "The image is too small to find a garment in."


class NoGarmentFound(PermanentError):
    code = "NO_GARMENT_FOUND"
    default_message = "No garment could be found in the photo. Try a photo with the garment clearly in view."


class UploadNotFound(PermanentError):
    code = "UPLOAD_NOT_FOUND"
    default_message = ("The uploaded photo is gone: it was deleted, or replaced by a newer upload, which is "
                       "processed as a job of its own.")


class InvalidObjectPath(PermanentError):
    code = "INVALID_OBJECT_PATH"
    default_message = "The upload's location is not of the form uploads/{userId}/{clothId}/{file}."


class InvalidMessage(PermanentError):
    code = "INVALID_MESSAGE"
    default_message = "A pipeline message was malformed or of an unknown schema version."


# -- configuration and providers -------------------------------------------------------------
class ModelUnavailable(PermanentError):
    code = "MODEL_UNAVAILABLE"
    default_message = "The background-removal model file is missing. Run `closet-pipeline fetch-model`."


class ProviderFailed(TransientError):
    """One provider failed in a way the next provider in a chain may not (timeout, 5xx, 429, bad image)."""

    code = "PROVIDER_FAILED"
    default_message = "An image provider did not answer usefully."


class ProvidersExhausted(TransientError):
    code = "PROVIDERS_EXHAUSTED"
    default_message = "Every configured background-removal provider failed; the job will be retried."


class StorageUnavailable(TransientError):
    code = "STORAGE_UNAVAILABLE"
    default_message = "Storage was temporarily unavailable."


class BlobNotFound(PermanentError):
    """A stored object is absent (shared/adapters/blobstore: every store raises it)."""

    code = "OBJECT_NOT_FOUND"
    default_message = "A stored object the job needs does not exist (it was deleted or replaced)."


class InProgress(TransientError):
    """Another delivery of the same message holds its in-progress lease (shared/runtime/outcomes.py)."""

    code = "IN_PROGRESS"
    default_message = "Another delivery of this message is being processed; this one will be retried."


class RetriesExhausted(PermanentError):
    code = "RETRIES_EXHAUSTED"
    default_message = "Processing kept failing after several attempts and was stopped."


# -- HTTP answers ----------------------------------------------------------------------------
class HttpErrorCode(str, Enum):
    """The stable `errorCode` of an HTTP function's answer other than 200 (upload_url, status). Each
    code's HTTP status sits beside the handlers that answer it (shared/http/common.py)."""

    INVALID_REQUEST = "INVALID_REQUEST"  # a missing or malformed field or parameter (the message names it)
    UNSUPPORTED_CONTENT_TYPE = "UNSUPPORTED_CONTENT_TYPE"
    INVALID_OBJECT_PATH = InvalidObjectPath.code  # the same code the pipeline gives a bad upload key
    UNAUTHORIZED = "UNAUTHORIZED"  # no bearer token, or the wrong one
    NOT_FOUND = "NOT_FOUND"  # no such job or upload, or the caller's own cannot see it
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_CONFIGURED = "NOT_CONFIGURED"  # the function has no secret: it refuses everyone
