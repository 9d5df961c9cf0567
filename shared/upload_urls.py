"""Signed upload URLs: the app asks the upload_url function for one, then PUTs the photo straight to
the uploads bucket, whose notification starts the pipeline.

The URL is a V4 signed PUT for `uploads/{userId}/{clothId}/{fileName}`, bound to the content type
and to a size limit (`x-goog-content-length-range`, a signed header the client must send), and it
expires after 15 minutes. Callers authenticate with a shared secret,
`Authorization: Bearer <CLOSET_UPLOAD_URL_SECRET>`; without that variable every call is refused.

Signing: with a service-account key (GOOGLE_APPLICATION_CREDENTIALS; the local topology generates
one, the emulator does not check signatures) the library signs locally; on Cloud Functions the
runtime's credentials hold no key, so the URL is signed through IAM signBlob (the function's
service account needs roles/iam.serviceAccountTokenCreator on itself).
"""

from __future__ import annotations

import datetime
import hmac
import os
from dataclasses import dataclass

from shared.config import get_settings
from shared.errors import InvalidObjectPath
from shared.layout import upload_key

SECRET_ENV = "CLOSET_UPLOAD_URL_SECRET"
TTL = datetime.timedelta(minutes=15)
CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "image/avif", "image/gif"})
LENGTH_RANGE_HEADER = "x-goog-content-length-range"


class UploadUrlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UploadRequest:
    user_id: str
    cloth_id: str
    file_name: str
    content_type: str


def authorize(authorization: str | None, secret: str | None = None) -> None:
    """Raise 503 when no secret is configured (never anonymous), 401 for a missing or wrong one."""
    if secret is None:
        configured = get_settings().upload_url_secret
        secret = configured.get_secret_value() if configured else None
    if not secret:
        raise UploadUrlError(503, f"upload_url is not configured ({SECRET_ENV} is unset)")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise UploadUrlError(401, "missing bearer token")
    if not hmac.compare_digest(presented.strip().encode(), secret.encode()):
        raise UploadUrlError(401, "wrong bearer token")


def parse_request(body: dict | None) -> UploadRequest:
    body = body if isinstance(body, dict) else {}
    values = {name: body.get(name) for name in ("userId", "clothId", "fileName", "contentType")}
    missing = [name for name, value in values.items() if not isinstance(value, (str, int)) or value == ""]
    if missing:
        raise UploadUrlError(400, f"missing or invalid: {', '.join(missing)}")
    content_type = str(values["contentType"]).strip().lower()
    if content_type not in CONTENT_TYPES:
        raise UploadUrlError(400, f"unsupported contentType {content_type!r}; expected one of {sorted(CONTENT_TYPES)}")
    request = UploadRequest(str(values["userId"]), str(values["clothId"]), str(values["fileName"]), content_type)
    try:
        upload_key(request.user_id, request.cloth_id, request.file_name)
    except InvalidObjectPath as exc:
        raise UploadUrlError(400, exc.message) from None
    return request


def signed_upload(client, bucket: str, request: UploadRequest, max_bytes: int, *,
                  now: datetime.datetime | None = None) -> dict:
    """The response body: the URL, the method and headers the PUT must carry, the key and the expiry."""
    key = upload_key(request.user_id, request.cloth_id, request.file_name)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    headers = {"Content-Type": request.content_type, LENGTH_RANGE_HEADER: f"0,{int(max_bytes)}"}
    blob = client.bucket(bucket).blob(key)
    url = blob.generate_signed_url(
        version="v4", method="PUT", expiration=TTL, content_type=request.content_type,
        headers={LENGTH_RANGE_HEADER: headers[LENGTH_RANGE_HEADER]}, **_signing_identity(client),
    )
    expires = (now + TTL).replace(microsecond=0)
    return {"url": url, "method": "PUT", "headers": headers, "objectKey": key,
            "expiresAt": expires.isoformat().replace("+00:00", "Z")}


def _signing_identity(client) -> dict[str, str]:
    credentials = client._credentials
    if hasattr(credentials, "sign_bytes") and getattr(credentials, "signer_email", None):
        return {}  # a key file: signed locally
    import google.auth.transport.requests

    credentials.refresh(google.auth.transport.requests.Request())
    return {"service_account_email": credentials.service_account_email, "access_token": credentials.token}


def storage_client(project: str):
    """Real credentials (a key file or the runtime's); the emulator's address when STORAGE_EMULATOR_HOST is set."""
    import google.auth
    from google.cloud import storage

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(key_file)
    else:
        credentials, _ = google.auth.default()
    options = {"api_endpoint": emulator} if emulator else None
    return storage.Client(project=project, credentials=credentials, client_options=options)


def handle_http(request, client=None, settings=None) -> tuple[dict, int, dict]:
    """The upload_url function: a Flask request in, (JSON body, status, headers) out."""
    from shared.job_status import cors_headers

    no_store = {"Cache-Control": "no-store", **cors_headers(request.headers.get("Origin"), methods="POST, OPTIONS")}
    if request.method == "OPTIONS":  # a browser's preflight
        return {}, 204, no_store
    try:
        if request.method != "POST":
            raise UploadUrlError(405, "use POST with a JSON body")
        authorize(request.headers.get("Authorization"))
        parsed = parse_request(request.get_json(silent=True))
        if settings is None:
            settings = get_settings()
        client = client or _cached_client(settings.project_id)
        return signed_upload(client, settings.uploads_bucket, parsed, settings.max_upload_bytes), 200, no_store
    except UploadUrlError as error:
        return {"error": error.message}, error.status, no_store


_CLIENT = None


def _cached_client(project: str):
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = storage_client(project)
    return _CLIENT


def generate_service_account_info(project: str, email: str | None = None) -> dict:
    """A throwaway service-account key for local signing (the emulator accepts any signature)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = email or f"upload-url@{project}.iam.gserviceaccount.com"
    return {
        "type": "service_account", "project_id": project, "private_key_id": "local", "private_key": pem,
        "client_email": email, "client_id": "0", "token_uri": "https://oauth2.googleapis.com/token",
    }
