"""Where every object lives. Keys start with their area (uploads, work, results, cache); the blob
store maps each area to its bucket (or folder).

    uploads/{userId}/{clothId}/{file}          the app's upload: the only thing that triggers us
    work/{jobId}/...                           intermediates, deleted by lifecycle after a day
    results/{userId}/{clothId}/{jobId}/...     what the app reads
    cache/{cacheKey}/...                       results addressed by content hash and settings
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from shared.errors import InvalidObjectPath

# The one id rule (user, cloth and job ids), always applied with fullmatch: "$" would also accept
# a trailing newline.
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILE = re.compile(r"[^/\x00-\x1f]{1,200}")


# The user's picks ride on the upload as its metadata: upload_url signs them as the PUT's headers
# x-goog-meta-<key> (so the bucket refuses other values), ingest reads them from the object.
# Request field (upload_url's JSON) -> metadata key.
UPLOAD_METADATA = {"category": "category", "imageType": "image-type"}
METADATA_HEADER_PREFIX = "x-goog-meta-"


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID.fullmatch(value) is not None


@dataclass(frozen=True)
class UploadPath:
    user_id: str
    cloth_id: str
    file_name: str


def parse_upload_key(key: str) -> UploadPath:
    """`uploads/{userId}/{clothId}/{file}` with ids as the app issues them; anything else is refused."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "uploads":
        raise InvalidObjectPath(f"Refused upload {key!r}: expected uploads/{{userId}}/{{clothId}}/{{file}}.")
    _, user_id, cloth_id, file_name = parts
    if not is_id(user_id) or not is_id(cloth_id):
        raise InvalidObjectPath(f"Refused upload {key!r}: user and cloth ids are letters, digits, '-' and '_'.")
    if not _FILE.fullmatch(file_name) or file_name in (".", ".."):
        raise InvalidObjectPath(f"Refused upload {key!r}: the file name is not acceptable.")
    return UploadPath(user_id, cloth_id, file_name)


def upload_key(user_id: str, cloth_id: str, file_name: str) -> str:
    key = f"uploads/{user_id}/{cloth_id}/{file_name}"
    parse_upload_key(key)
    return key


def job_id_for(upload: str, generation: int | str) -> str:
    """Deterministic: a redelivered upload notification names the same job."""
    return hashlib.sha256(f"{upload}#{generation}".encode()).hexdigest()[:20]


def work_key(job_id: str, name: str) -> str:
    return f"work/{job_id}/{name}"


def results_prefix(user_id: str, cloth_id: str, job_id: str) -> str:
    return f"results/{user_id}/{cloth_id}/{job_id}/"


def cache_prefix(cache_key: str) -> str:
    return f"cache/{cache_key}/"

