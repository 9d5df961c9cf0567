"""One exception per failure mode, each with a stable machine-readable code.

Permanent errors end the job as failed (the message is acked); transient errors
propagate so the transport retries the message with backoff.
"""

from __future__ import annotations


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
    default_message = "The file is not a supported image. Upload a JPEG, PNG, WebP, GIF, HEIC or AVIF photo."


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


class RetriesExhausted(PermanentError):
    code = "RETRIES_EXHAUSTED"
    default_message = "Processing kept failing after several attempts and was stopped."
