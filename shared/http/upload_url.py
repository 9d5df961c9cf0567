"""Signed upload URLs: the app asks the upload_url function for one, then PUTs the photo straight to
the uploads bucket, whose notification starts the pipeline.

The URL is a V4 signed PUT for `uploads/{userId}/{clothId}/{fileName}`, bound to the content type,
to a size limit (`x-goog-content-length-range`) and to the user's picks, when given (`category`,
`imageType` become `x-goog-meta-category` and `x-goog-meta-image-type`, the object's metadata, which
ingest reads): signed headers the client must send as returned. It expires after 15 minutes. Callers authenticate with a shared secret,
`Authorization: Bearer <CLOSET_UPLOAD_URL_SECRET>`; without that variable every call is refused.

Signing: see `shared.adapters.blobstore.gcs.signing_identity` (a key file locally, IAM signBlob on
Cloud Functions).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from shared.adapters.blobstore.gcs import signing_identity, storage_client
from shared.config import get_settings
from shared.errors import InvalidObjectPath
from shared.http.common import HttpError, authorize, cors_headers
from shared.layout import upload_key
from shared.messages import Category, ImageType

TTL = datetime.timedelta(minutes=15)
CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "image/avif", "image/gif"})
LENGTH_RANGE_HEADER = "x-goog-content-length-range"


# The user's picks ride on the upload as object metadata; signed, so the PUT must carry exactly these.
CATEGORY_HEADER = "x-goog-meta-category"
IMAGE_TYPE_HEADER = "x-goog-meta-image-type"


@dataclass(frozen=True)
class UploadRequest:
    user_id: str
    cloth_id: str
    file_name: str
    content_type: str
    category: str | None = None  # TOP, BOTTOM, SHOES or ACC: the user's pick for the garment
    image_type: str | None = None  # FULL_BODY or SINGLE_ITEM, when the user said


def parse_request(body: dict | None) -> UploadRequest:
    body = body if isinstance(body, dict) else {}
    values = {name: body.get(name) for name in ("userId", "clothId", "fileName", "contentType")}
    missing = [name for name, value in values.items() if not isinstance(value, (str, int)) or value == ""]
    if missing:
        raise HttpError(400, f"missing or invalid: {', '.join(missing)}")
    content_type = str(values["contentType"]).strip().lower()
    if content_type not in CONTENT_TYPES:
        raise HttpError(400, f"unsupported contentType {content_type!r}; expected one of {sorted(CONTENT_TYPES)}")
    picks = {}
    for name, allowed in (("category", Category.__members__), ("imageType", ImageType.__members__)):
        value = body.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or value.strip().upper() not in allowed:
            raise HttpError(400, f"invalid {name} {value!r}; expected one of {sorted(allowed)}")
        picks[name] = value.strip().upper()
    request = UploadRequest(str(values["userId"]), str(values["clothId"]), str(values["fileName"]), content_type,
                            picks.get("category"), picks.get("imageType"))
    try:
        upload_key(request.user_id, request.cloth_id, request.file_name)
    except InvalidObjectPath as exc:
        raise HttpError(400, exc.message) from None
    return request


def signed_upload(client, bucket: str, request: UploadRequest, max_bytes: int, *,
                  now: datetime.datetime | None = None) -> dict:
    """The response body: the URL, the method and headers the PUT must carry, the key and the expiry."""
    key = upload_key(request.user_id, request.cloth_id, request.file_name)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    signed_headers = {LENGTH_RANGE_HEADER: f"0,{int(max_bytes)}"}
    if request.category:
        signed_headers[CATEGORY_HEADER] = request.category
    if request.image_type:
        signed_headers[IMAGE_TYPE_HEADER] = request.image_type
    headers = {"Content-Type": request.content_type, **signed_headers}
    blob = client.bucket(bucket).blob(key)
    url = blob.generate_signed_url(
        version="v4", method="PUT", expiration=TTL, content_type=request.content_type,
        headers=signed_headers, **signing_identity(client),
    )
    expires = (now + TTL).replace(microsecond=0)
    return {"url": url, "method": "PUT", "headers": headers, "objectKey": key,
            "expiresAt": expires.isoformat().replace("+00:00", "Z")}


def handle_http(request, client=None, settings=None) -> tuple[dict, int, dict]:
    """The upload_url function: a Flask request in, (JSON body, status, headers) out."""
    no_store = {"Cache-Control": "no-store", **cors_headers(request.headers.get("Origin"), methods="POST, OPTIONS")}
    if request.method == "OPTIONS":  # a browser's preflight
        return {}, 204, no_store
    try:
        if request.method != "POST":
            raise HttpError(405, "use POST with a JSON body")
        authorize(request.headers.get("Authorization"))
        parsed = parse_request(request.get_json(silent=True))
        if settings is None:
            settings = get_settings()
        client = client or _cached_client(settings.project_id)
        return signed_upload(client, settings.uploads_bucket, parsed, settings.max_upload_bytes), 200, no_store
    except HttpError as error:
        return {"error": error.message}, error.status, no_store


_CLIENT = None


def _cached_client(project: str):
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = storage_client(project)
    return _CLIENT
