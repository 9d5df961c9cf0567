"""shared/http/upload_url.py without a server: authentication, validation and the signed URL itself."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from google.cloud import storage  # noqa: E402
from google.oauth2 import service_account  # noqa: E402

from closet_pipeline.dev.keys import generate_service_account_info
from shared.config import get_settings
from shared.http import common, upload_url  # noqa: E402
from shared.http.common import HttpError, authorize
from shared.http.upload_url import UploadRequest, parse_request, signed_upload  # noqa: E402

GOOD = {"userId": "7", "clothId": "c-1", "fileName": "shirt.heic", "contentType": "image/heic"}


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are parsed once per process; these tests change the environment."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def client():
    info = generate_service_account_info("closet-test")
    credentials = service_account.Credentials.from_service_account_info(info)
    return storage.Client(project="closet-test", credentials=credentials,
                          client_options={"api_endpoint": "http://127.0.0.1:4443"})


def test_unconfigured_secret_refuses_everyone(monkeypatch):
    monkeypatch.delenv(common.SECRET_ENV, raising=False)
    get_settings.cache_clear()
    with pytest.raises(HttpError) as refused:
        authorize("Bearer anything")
    assert refused.value.status == 503


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret"])
def test_missing_or_wrong_bearer_is_401(header):
    with pytest.raises(HttpError) as refused:
        authorize(header, "s3cret")
    assert refused.value.status == 401


def test_right_bearer_passes():
    authorize("Bearer s3cret", "s3cret")


@pytest.mark.parametrize("change", [
    {"contentType": "text/plain"}, {"contentType": "image/svg+xml"}, {"fileName": "a/b.jpg"}, {"fileName": ".."},
    {"userId": "../x"}, {"clothId": ""}, {"userId": None}, {"clothId": "x" * 65},
])
def test_bad_requests_are_400(change):
    with pytest.raises(HttpError) as refused:
        parse_request({**GOOD, **change})
    assert refused.value.status == 400
    answer = refused.value.answer()  # the stable code, the developer's words and a person's sentence
    assert set(answer) == {"errorCode", "error", "message"} and answer["message"].endswith(".")
    assert "contentType" not in answer["message"] and "userId" not in answer["message"]


def test_signed_put_url_binds_type_and_size(client):
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    answer = signed_upload(client, "closet-uploads", parse_request(GOOD), 25_000_000, now=now)
    assert answer["method"] == "PUT"
    assert answer["objectKey"] == "uploads/7/c-1/shirt.heic"
    assert answer["headers"] == {"Content-Type": "image/heic", "x-goog-content-length-range": "0,25000000"}
    assert answer["expiresAt"] == "2030-01-01T00:15:00Z"
    url = urlparse(answer["url"])
    assert url.netloc == "127.0.0.1:4443" and url.path == "/closet-uploads/uploads/7/c-1/shirt.heic"
    query = parse_qs(url.query)
    assert query["X-Goog-Expires"] == ["900"]
    assert set(query["X-Goog-SignedHeaders"][0].split(";")) == {"content-type", "host", "x-goog-content-length-range"}
    assert query["X-Goog-Signature"][0]


def test_the_users_picks_are_signed_headers_of_the_put(client):
    """Item 18 of issue 11: the pick travels as the upload's metadata, bound into the signature."""
    answer = signed_upload(client, "closet-uploads", parse_request({**GOOD, "category": "shoes",
                                                                     "imageType": "full_body"}), 1000)
    assert answer["headers"]["x-goog-meta-category"] == "SHOES"
    assert answer["headers"]["x-goog-meta-image-type"] == "FULL_BODY"
    signed = set(parse_qs(urlparse(answer["url"]).query)["X-Goog-SignedHeaders"][0].split(";"))
    assert {"x-goog-meta-category", "x-goog-meta-image-type"} <= signed
    without = signed_upload(client, "closet-uploads", parse_request(GOOD), 1000)
    assert "x-goog-meta-category" not in without["headers"]
    for bad in ({"category": "HAT"}, {"imageType": "PORTRAIT"}, {"category": 3}):
        with pytest.raises(HttpError):
            parse_request({**GOOD, **bad})


def test_handle_http(monkeypatch, client):
    monkeypatch.setenv(common.SECRET_ENV, "s3cret")
    get_settings.cache_clear()
    settings = SimpleNamespace(project_id="closet-test", uploads_bucket="closet-uploads", max_upload_bytes=1000)

    def request(method="POST", token="s3cret", body=GOOD):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return SimpleNamespace(method=method, headers=headers, get_json=lambda silent=True: body)

    body, status, _ = upload_url.handle_http(request(), client, settings)
    assert status == 200 and body["headers"]["x-goog-content-length-range"] == "0,1000"
    assert upload_url.handle_http(request(token=None), client, settings)[1] == 401
    assert upload_url.handle_http(request(method="GET"), client, settings)[1] == 405
    assert upload_url.handle_http(request(body=None), client, settings)[1] == 400
    assert parse_request({**GOOD, "contentType": "IMAGE/HEIC"}) == UploadRequest(
        user_id="7", cloth_id="c-1", file_name="shirt.heic", content_type="image/heic")
    # Ids only as strings of the id rule: a number or true is refused, never turned into uploads/True/...
    for untyped in (7, True):
        body, status, _ = upload_url.handle_http(request(body={**GOOD, "userId": untyped}), client, settings)
        assert status == 400 and body["errorCode"] == "INVALID_REQUEST", body
        assert body["message"].startswith("The app sent an unusable user id"), body
