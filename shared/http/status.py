"""The status endpoint: where a browser (or the app) asks "how far is my photo?" without a topic.

The pipeline publishes progress events to a topic, which a browser cannot subscribe to; this endpoint
is stateless and reads the answer from storage instead:

* finished: `results/{userId}/{clothId}/{jobId}/result.json` exists (written when the job's end is
  published, shared/runtime/job_end.py) -> `completed` or `failed`, with the result document, its
  links signed afresh for this answer;
* in flight: every stage records its outcome, including the very progress events it published, before
  publishing; the outcome records (shared/runtime/outcomes.py) answer the furthest of those events,
  which is the job's progress at the app's percentages (10 removing background, 30 analysing, 50
  analysed, 50-70 one per garment, 95 done; while garments are expanded, EXPANDING at 50);
* not started yet (the upload's notification is still on its way): `processing`, QUEUED, 0 %.

    GET ?userId=1&clothId=42&jobId=4649fe8a7779b6ded96a
    GET ?userId=1&clothId=42&objectKey=uploads/1/42/shirt.jpg[&generation=1764150298123456]
    Authorization: Bearer <CLOSET_UPLOAD_URL_SECRET>      (the same secret as upload_url)

    200 {"jobId", "state": "processing"|"completed"|"failed", "progressPercentage", "currentStep",
         "result": <result document> | null}

Callers see only their own jobs: the result is read under the caller's `results/{userId}/{clothId}/`
folder, an objectKey must lie under `uploads/{userId}/{clothId}/`, and progress recorded for another
user's or cloth's job is answered 404 like an unknown job. Without `generation`, the upload's current
generation names the job (the same id the pipeline derives from the notification). Answers carry
CORS headers (`Access-Control-Allow-Origin: *` unless CLOSET_CORS_ORIGINS lists origins) so a web
page on another origin can poll; the bearer token, not the origin, is what protects the data.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from shared.adapters.blobstore import BlobNotFound, BlobStore
from shared.config import get_settings
from shared.documents import STEP_PERCENT, ProgressStep, ResultDocument
from shared.errors import HttpErrorCode, InvalidObjectPath
from shared.http.common import HttpError, authorize, cors_headers
from shared.layout import is_id, job_id_for, parse_upload_key, results_prefix
from shared.messages import Frozen
from shared.runtime.links import signed
from shared.runtime.outcomes import OutcomeRecords

_GENERATION = re.compile(r"[0-9]{1,20}")


class JobStatus(Frozen):
    """The answer: the job's state and, once it ended, its result document (links signed for it)."""

    job_id: str
    state: Literal["processing", "completed", "failed"]
    progress_percentage: int = Field(ge=0, le=100)
    # A progress step, EXPANDING while garments are expanded, or QUEUED before ingest started.
    current_step: Literal[tuple(["QUEUED", *ProgressStep.__members__])]  # type: ignore[valid-type]
    result: ResultDocument | None  # always present: null until the job ended

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")  # null fields kept, as in result.json


# Every code this function answers with (the OpenAPI document lists them per status).
ERROR_CODES = (HttpErrorCode.INVALID_REQUEST, HttpErrorCode.INVALID_OBJECT_PATH, HttpErrorCode.UNAUTHORIZED,
               HttpErrorCode.NOT_FOUND, HttpErrorCode.METHOD_NOT_ALLOWED, HttpErrorCode.NOT_CONFIGURED)


def _answer(job_id: str, state: str, percent: int, step: str, result: ResultDocument | None = None) -> JobStatus:
    return JobStatus(job_id=job_id, state=state, progress_percentage=percent, current_step=step, result=result)


def job_status(store: BlobStore, user_id: str, cloth_id: str, job_id: str, *, owner_known: bool = False) -> JobStatus:
    """The job's state read from storage. `owner_known`: the job id was derived from the caller's own
    upload key, so a job with nothing recorded yet is queued rather than unknown (404)."""
    try:
        stored = store.read(results_prefix(user_id, cloth_id, job_id) + "result.json")
        document = ResultDocument.model_validate_json(stored.data)
    except BlobNotFound:
        document = None
    if document is not None:
        document = signed(document, store)  # links signed now: the stored document names files, never expires
        if document.success:
            return _answer(job_id, "completed", 100, "COMPLETED", document)
        return _answer(job_id, "failed", 100, "FAILED", document)

    progress = OutcomeRecords(store).progress(job_id)
    if progress.latest is not None:
        if progress.owners != {(user_id, cloth_id)}:
            # Another user's (or cloth's) job: the same answer as an unknown one.
            raise HttpError(HttpErrorCode.NOT_FOUND, "no such job")
        step, percent = progress.latest.current_step.value, progress.latest.progress_percentage
        if progress.latest.status == "FAILED":
            return _answer(job_id, "failed", percent, step)  # the failed result.json follows at once
        return _answer(job_id, "processing", min(percent, 99), step)
    if progress.started and owner_known:  # ingest is writing
        step = ProgressStep.REMOVING_BACKGROUND
        return _answer(job_id, "processing", STEP_PERCENT[step], step.value)
    if owner_known or progress.started:
        return _answer(job_id, "processing", 0, "QUEUED")
    raise HttpError(HttpErrorCode.NOT_FOUND, "no such job (yet)")


def resolve(store: BlobStore, params) -> JobStatus:
    """Validate the query, bind it to the caller's folder, and answer."""
    get = (lambda name: (params.get(name) or "").strip())
    user_id, cloth_id, job_id, object_key, generation = (get("userId"), get("clothId"), get("jobId"),
                                                         get("objectKey"), get("generation"))
    if not is_id(user_id):
        raise HttpError(HttpErrorCode.INVALID_REQUEST, "missing or invalid: userId")
    if object_key:
        try:
            upload = parse_upload_key(object_key)
        except InvalidObjectPath as exc:
            raise HttpError(HttpErrorCode.INVALID_OBJECT_PATH, exc.message) from None
        if upload.user_id != user_id or (cloth_id and upload.cloth_id != cloth_id):
            raise HttpError(HttpErrorCode.NOT_FOUND, "no such upload")
        cloth_id = upload.cloth_id
        if generation and not _GENERATION.fullmatch(generation):
            raise HttpError(HttpErrorCode.INVALID_REQUEST, "invalid: generation")
        if not generation:
            found = OutcomeRecords(store).upload_generation(object_key)
            if found is None:
                raise HttpError(HttpErrorCode.NOT_FOUND, "no such upload")
            generation = str(found)
        derived = job_id_for(object_key, generation)
        if job_id and job_id != derived:
            raise HttpError(HttpErrorCode.INVALID_REQUEST, "jobId does not match objectKey and generation")
        return job_status(store, user_id, cloth_id, derived, owner_known=True)
    if not is_id(cloth_id):
        raise HttpError(HttpErrorCode.INVALID_REQUEST, "missing or invalid: clothId")
    if not is_id(job_id):
        raise HttpError(HttpErrorCode.INVALID_REQUEST, "missing or invalid: jobId (or objectKey)")
    return job_status(store, user_id, cloth_id, job_id)


# -- HTTP --------------------------------------------------------------------------------------
def handle_http(request, store: BlobStore | None = None) -> tuple[dict | str, int, dict]:
    """The status function: a Flask request in, (JSON body, status, headers) out."""
    headers = {"Cache-Control": "no-store", **cors_headers(request.headers.get("Origin"), "GET, OPTIONS")}
    if request.method == "OPTIONS":  # CORS preflight: no credentials are sent with it
        return "", 204, headers
    try:
        if request.method not in ("GET", "HEAD"):
            raise HttpError(HttpErrorCode.METHOD_NOT_ALLOWED, "use GET")
        authorize(request.headers.get("Authorization"))
        return resolve(store or _cached_store(), request.args).to_dict(), 200, headers
    except HttpError as error:
        return error.answer(), error.status, headers


_STORE = None


def _cached_store() -> BlobStore:
    global _STORE
    if _STORE is None:
        from shared.adapters.blobstore.gcs import store_from_settings

        _STORE = store_from_settings(get_settings())
    return _STORE
