"""Signed upload URLs: the app asks the upload_url function for one, then PUTs the photo straight to
the uploads bucket, whose notification starts the pipeline.

The URL is a V4 signed PUT for `uploads/{userId}/{clothId}/{fileName}`, bound to the content type,
to a size limit (`x-goog-content-length-range`) and to the user's picks, when given (`category`,
`imageType` become `x-goog-meta-category` and `x-goog-meta-image-type`, the object's metadata, which
ingest reads): signed headers the client must send as returned. It expires after shared/topology.json's
`links.uploadSeconds`. Callers authenticate with a shared secret, `Authorization: Bearer
<CLOSET_UPLOAD_URL_SECRET>`; without that variable every call is refused. Ids are accepted only as
strings of the id rule (shared/layout.py): a number or `true` is refused, never turned into a path.
Every refusal carries, beside `error`, a `message` a person can read (the demo page shows it).

Signing: see `shared.adapters.blobstore.gcs.signing_identity` (a key file locally, IAM signBlob on
Cloud Functions).
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field

from shared.adapters.blobstore.gcs import signing_identity, storage_client
from shared.config import get_settings
from shared.errors import HttpErrorCode, InvalidObjectPath
from shared.formats import CONTENT_TYPES, spoken
from shared.http.common import HttpError, authorize, cors_headers
from shared.layout import METADATA_HEADER_PREFIX, UPLOAD_METADATA, is_id, upload_key
from shared.messages import Category, Frozen, Id, ImageType
from shared.topology import declaration

TTL = datetime.timedelta(seconds=declaration().links.upload_s)
LENGTH_RANGE_HEADER = "x-goog-content-length-range"

# The user's picks ride on the upload as object metadata; signed, so the PUT must carry exactly these.
CATEGORY_HEADER = METADATA_HEADER_PREFIX + UPLOAD_METADATA["category"]
IMAGE_TYPE_HEADER = METADATA_HEADER_PREFIX + UPLOAD_METADATA["imageType"]

_ID_SENTENCE = "The app sent an unusable {what}, so the photo cannot be uploaded. Please sign in again or contact support."


class UploadRequest(Frozen):
    """What the app POSTs. Parsing is lenient about the case of the content type and the picks
    (parse_request); this is the form the contract documents."""

    user_id: Id
    cloth_id: Id
    file_name: str = Field(min_length=1)  # the object's name under uploads/{userId}/{clothId}/
    content_type: Literal[tuple(sorted(CONTENT_TYPES))]  # type: ignore[valid-type]
    category: Category | None = None  # the user's pick for the garment
    image_type: ImageType | None = None  # what the photo shows, when the user said


class UploadAnswer(Frozen):
    """The signed PUT: send exactly `headers` with it, before `expiresAt`."""

    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]  # Content-Type, x-goog-content-length-range and the picks' x-goog-meta-* headers
    object_key: str
    expires_at: datetime.datetime


# Every code this function answers with (the OpenAPI document lists them per status).
ERROR_CODES = (HttpErrorCode.INVALID_REQUEST, HttpErrorCode.UNSUPPORTED_CONTENT_TYPE, HttpErrorCode.INVALID_OBJECT_PATH,
               HttpErrorCode.UNAUTHORIZED, HttpErrorCode.METHOD_NOT_ALLOWED, HttpErrorCode.NOT_CONFIGURED)


def parse_request(body: dict | None) -> UploadRequest:
    body = body if isinstance(body, dict) else {}
    for name, what in (("userId", "user id"), ("clothId", "garment id")):
        if not is_id(body.get(name)):  # strings of the id rule only: never str(True), str(42)
            raise HttpError(HttpErrorCode.INVALID_REQUEST,
                            f"missing or invalid: {name} (a string of letters, digits, '-' and '_', 1-64)",
                            _ID_SENTENCE.format(what=what))
    file_name, content_type = body.get("fileName"), body.get("contentType")
    if not isinstance(file_name, str) or not file_name:
        raise HttpError(HttpErrorCode.INVALID_REQUEST, "missing or invalid: fileName",
                        "The photo has no usable file name; rename it and try again.")
    if not isinstance(content_type, str) or content_type.strip().lower() not in CONTENT_TYPES:
        raise HttpError(HttpErrorCode.UNSUPPORTED_CONTENT_TYPE,
                        f"unsupported contentType {content_type!r}; expected one of {sorted(CONTENT_TYPES)}",
                        f"This file is not a photo we can read. Please choose a {spoken()} photo.")
    content_type = content_type.strip().lower()
    picks = {}
    for name, allowed in (("category", Category.__members__), ("imageType", ImageType.__members__)):
        value = body.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or value.strip().upper() not in allowed:
            raise HttpError(HttpErrorCode.INVALID_REQUEST,
                            f"invalid {name} {value!r}; expected one of {sorted(allowed)}",
                            "That choice of what the photo shows is not one we know; pick one from the list, "
                            "or let the app decide.")
        picks[name] = value.strip().upper()
    try:
        upload_key(body["userId"], body["clothId"], file_name)
    except InvalidObjectPath as exc:
        raise HttpError(HttpErrorCode.INVALID_OBJECT_PATH, exc.message, "The photo's file name cannot be used "
                        "(it has a '/' or is too long); rename it and try again.") from None
    return UploadRequest(user_id=body["userId"], cloth_id=body["clothId"], file_name=file_name,
                         content_type=content_type, **picks)


def signed_upload(client, bucket: str, request: UploadRequest, max_bytes: int, *,
                  now: datetime.datetime | None = None) -> dict:
    """The response body: the URL, the method and headers the PUT must carry, the key and the expiry."""
    key = upload_key(request.user_id, request.cloth_id, request.file_name)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    signed_headers = {LENGTH_RANGE_HEADER: f"0,{int(max_bytes)}"}
    if request.category:
        signed_headers[CATEGORY_HEADER] = request.category.value
    if request.image_type:
        signed_headers[IMAGE_TYPE_HEADER] = request.image_type.value
    headers = {"Content-Type": request.content_type, **signed_headers}
    blob = client.bucket(bucket).blob(key)
    url = blob.generate_signed_url(
        version="v4", method="PUT", expiration=TTL, content_type=request.content_type,
        headers=signed_headers, **signing_identity(client),
    )
    answer = UploadAnswer(url=url, headers=headers, object_key=key, expires_at=(now + TTL).replace(microsecond=0))
    return answer.model_dump(mode="json")


def handle_http(request, client=None, settings=None) -> tuple[dict, int, dict]:
    """The upload_url function: a Flask request in, (JSON body, status, headers) out."""
    no_store = {"Cache-Control": "no-store", **cors_headers(request.headers.get("Origin"), methods="POST, OPTIONS")}
    if request.method == "OPTIONS":  # a browser's preflight
        return {}, 204, no_store
    try:
        if request.method != "POST":
            raise HttpError(HttpErrorCode.METHOD_NOT_ALLOWED, "use POST with a JSON body")
        authorize(request.headers.get("Authorization"))
        parsed = parse_request(request.get_json(silent=True))
        if settings is None:
            settings = get_settings()
        client = client or _cached_client(settings.project_id)
        return signed_upload(client, settings.uploads_bucket, parsed, settings.max_upload_bytes), 200, no_store
    except HttpError as error:
        return error.answer(), error.status, no_store


_CLIENT = None


def _cached_client(project: str):
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = storage_client(project)
    return _CLIENT
