"""The browser side: clients/web/closet-upload.js and the demo page in headless Chromium, the status
endpoint (shared/http/status.py, functions/status) and the dev web server (closet_pipeline/dev/web.py).

* status logic on an in-memory store (no browser, no emulator);
* the module on its own, in Chromium through a tiny test page: resize sizes, EXIF orientation, kept
  transparency, the fallback to the original; the upload's exact headers and bounded retries, and
  followJob's polling (requests answered by Playwright's routing, no server);
* the demo page against the local topology (TopologyUnderTest: emulators + every function): a fixture
  photo, a 12 MP portrait photo stored sideways with EXIF orientation 6, and a HEIC Chromium cannot
  decode go through to a result shown on the page; what reached the bucket is read back. A screenshot
  of each finished page is saved under the test's tmp dir and, when CLOSET_SCREENSHOT_DIR is set, there.

Chromium: /usr/bin/chromium (Debian's package) or CLOSET_CHROMIUM; driven by Python's playwright
with executable_path, so no browser download is needed (`make test` installs Debian's chromium when
missing). Without Chromium (or Java, for the topology) these tests fail with a one-line reason.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from closet_pipeline.adapters.memory import MemoryBlobStore
from closet_pipeline.dev.tools import chromium
from closet_pipeline.dev.web import DevWeb
from shared.config import get_settings
from shared.documents import ProgressEvent, ProgressStep, ResultDocument
from shared.http import status as job_status
from shared.http.common import HttpError
from shared.layout import job_id_for
from shared.runtime.outcomes import OutcomeRecords
from tests.topology_helpers import TopologyUnderTest

PHOTOS = sorted((Path(__file__).parent / "data" / "photos").glob("*.jpg"))
SECRET = "web-test-secret"
JOB_TIMEOUT_MS = 150_000  # three jobs share two busy CPUs; the first one loads IS-Net
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]


needs_browser = pytest.mark.usefixtures("browser_tools")
needs_topology = pytest.mark.usefixtures("browser_tools")


# == the status logic, on an in-memory store =======================================================
def _event(job: str, step: ProgressStep, percent: int, user: str = "u1", cloth: str = "c1",
           status: str = "PROCESSING") -> str:
    return ProgressEvent(job_id=job, cloth_id=cloth, user_id=user, status=status, current_step=step,
                         progress_percentage=percent).model_dump_json()


def _outcome(store: MemoryBlobStore, job: str, name: str, *events: str) -> None:
    body = json.dumps({"next": [], "progress": list(events), "result": None}).encode()
    store.write(f"work/{job}/outcomes/{name}.json", body, content_type="application/json")


def test_status_follows_the_recorded_outcomes():
    store, job = MemoryBlobStore(), "job1"
    with pytest.raises(HttpError) as unknown:
        job_status.job_status(store, "u1", "c1", job)
    assert unknown.value.status == 404
    assert job_status.job_status(store, "u1", "c1", job, owner_known=True).current_step == "QUEUED"

    store.write(f"work/{job}/working.png", b"png", content_type="image/png")
    assert job_status.job_status(store, "u1", "c1", job, owner_known=True).progress_percentage == 10
    _outcome(store, job, "ingest", _event(job, ProgressStep.REMOVING_BACKGROUND, 10))
    state = job_status.job_status(store, "u1", "c1", job)
    assert (state.state, state.current_step, state.progress_percentage) == ("processing", "REMOVING_BACKGROUND", 10)
    _outcome(store, job, "remove_background", _event(job, ProgressStep.BACKGROUND_REMOVED, 25),
             _event(job, ProgressStep.ANALYZING, 30))
    assert job_status.job_status(store, "u1", "c1", job).current_step == "ANALYZING"
    _outcome(store, job, "segment", _event(job, ProgressStep.ANALYZED, 50))
    _outcome(store, job, "expand-0")
    _outcome(store, job, "expand-1")
    state = job_status.job_status(store, "u1", "c1", job)
    assert (state.current_step, state.progress_percentage) == ("EXPANDING", 50)
    _outcome(store, job, "deliver-1", _event(job, ProgressStep.EXPANDING, 60))
    assert job_status.job_status(store, "u1", "c1", job).progress_percentage == 60
    assert OutcomeRecords(store).stages_done(job) == ["ingest", "remove_background", "segment", "expand", "deliver"]

    # Somebody else asking with this job id: the same answer as for an unknown job.
    for user, cloth in (("intruder", "c1"), ("u1", "other")):
        with pytest.raises(HttpError) as foreign:
            job_status.job_status(store, user, cloth, job)
        assert foreign.value.status == 404

    document = ResultDocument(job_id=job, cloth_id="c1", user_id="u1", success=True, timings={"ingest": 5})
    store.write(f"results/u1/c1/{job}/result.json", document.to_json(), content_type="application/json")
    done = job_status.job_status(store, "u1", "c1", job).to_dict()
    assert done["state"] == "completed" and done["progressPercentage"] == 100 and done["currentStep"] == "COMPLETED"
    assert done["result"]["jobId"] == job and done["result"]["timings"] == {"ingest": 5}


def test_status_of_a_failed_job_and_by_object_key():
    store = MemoryBlobStore()
    key = "uploads/u2/c2/shirt.heic"
    generation = store.write(key, b"bytes", content_type="image/heic")
    job = job_id_for(key, generation)
    params = {"userId": "u2", "objectKey": key}
    assert job_status.resolve(store, params).to_dict()["currentStep"] == "QUEUED"
    failed = ResultDocument(job_id=job, cloth_id="c2", user_id="u2", success=False, error_code="UNSUPPORTED_FORMAT",
                            error_message="no")
    store.write(f"results/u2/c2/{job}/result.json", failed.to_json(), content_type="application/json")
    answer = job_status.resolve(store, {**params, "generation": str(generation)}).to_dict()
    assert answer["state"] == "failed" and answer["result"]["errorCode"] == "UNSUPPORTED_FORMAT"
    assert job_status.resolve(store, {"userId": "u2", "clothId": "c2", "jobId": job}).state == "failed"
    refused = [
        ({"userId": "intruder", "objectKey": key}, 404),           # not the caller's upload
        ({"userId": "u2", "clothId": "other", "objectKey": key}, 404),
        ({"userId": "u2", "objectKey": "uploads/u2/c2/gone.jpg"}, 404),
        ({"userId": "u2", "objectKey": "../etc/passwd"}, 400),
        ({"userId": "u2", "clothId": "c2"}, 400),                   # neither jobId nor objectKey
        ({"userId": "u/2", "clothId": "c2", "jobId": job}, 400),
        ({"userId": "u2", "objectKey": key, "generation": "x1"}, 400),
        ({"userId": "u2", "objectKey": key, "jobId": "notthatjob"}, 400),
    ]
    for params, status in refused:
        with pytest.raises(HttpError) as error:
            job_status.resolve(store, params)
        assert error.value.status == status, params


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("CLOSET_UPLOAD_URL_SECRET", SECRET)
    get_settings.cache_clear()
    yield SECRET
    get_settings.cache_clear()


def _request(method="GET", args=None, token=SECRET, origin="https://app.example"):
    headers = {"Origin": origin}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return SimpleNamespace(method=method, args=args or {}, headers=headers)


def test_status_http_auth_and_cors(secret, monkeypatch):
    store = MemoryBlobStore()
    key = "uploads/u3/c3/a.jpg"
    store.write(key, b"x", content_type="image/jpeg")
    args = {"userId": "u3", "objectKey": key}
    body, status, headers = job_status.handle_http(_request(args=args), store)
    assert status == 200 and body["state"] == "processing" and headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cache-Control"] == "no-store"
    for token in (None, "wrong"):
        body, status, headers = job_status.handle_http(_request(args=args, token=token), store)
        assert status == 401 and "Access-Control-Allow-Origin" in headers  # the page can read the refusal
    body, status, headers = job_status.handle_http(_request("OPTIONS", token=None), store)
    assert status == 204 and "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert job_status.handle_http(_request("POST", args=args), store)[1] == 405
    monkeypatch.setenv("CLOSET_CORS_ORIGINS", "https://app.example, https://admin.example")
    get_settings.cache_clear()
    assert job_status.handle_http(_request(args=args), store)[2]["Access-Control-Allow-Origin"] == "https://app.example"
    other = job_status.handle_http(_request(args=args, origin="https://evil.example"), store)[2]
    assert "Access-Control-Allow-Origin" not in other and other["Vary"] == "Origin"


def test_dev_web_serves_only_its_folder():
    with DevWeb({}, None, auth_token="t") as web:
        def fetch(path):
            try:
                with urllib.request.urlopen(web.url + path, timeout=10) as response:
                    return response.status, response.headers.get("Content-Type"), response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.headers.get("Content-Type"), error.read()

        status, content_type, body = fetch("/closet-upload.js")
        assert status == 200 and content_type.startswith("text/javascript")
        assert b"export async function followJob" in body
        assert fetch("/demo/")[0] == 200 and b"demo.js" in fetch("/demo/")[2]
        assert json.loads(fetch("/config.json")[2])["statusEndpoint"] == "/api/status"
        for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/demo/../../README.md", "/nothing.js"):
            assert fetch(path)[0] == 404, path
        assert fetch("/api/status?userId=1")[0] == 502  # no topology behind this one


# == the module in Chromium, on its own ============================================================
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        pytest.fail("chromium not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS, timeout=120_000)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def static_web():
    with DevWeb({}, None) as web:
        yield web


def _photo_like(size: tuple[int, int], source: Path) -> Image.Image:
    """A fixture photo scaled to `size`, with sensor-like noise so the JPEG is photo-sized."""
    with Image.open(source) as photo:
        image = ImageOps.exif_transpose(photo).convert("RGB").resize(size, Image.BICUBIC)
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(image, noise, 0.12)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Generated inputs: what a phone produces, and what a browser cannot decode."""
    import pillow_heif

    folder = tmp_path_factory.mktemp("web-images")
    made = {}
    # A 12 MP portrait photo, stored sideways (4000x3000) with EXIF orientation 6: "rotate 90° clockwise".
    upright = _photo_like((3000, 4000), PHOTOS[1])
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.ROTATE_90).save(folder / "portrait-12mp.jpg", quality=92, exif=exif.tobytes())
    upright.resize((900, 1200), Image.LANCZOS).save(folder / "portrait-expected.png")
    made["portrait"], made["portrait_expected"] = folder / "portrait-12mp.jpg", folder / "portrait-expected.png"
    _photo_like((4000, 3000), PHOTOS[0]).save(folder / "landscape.jpg", quality=90)
    made["landscape"] = folder / "landscape.jpg"
    _photo_like((800, 600), PHOTOS[0]).save(folder / "small.jpg", quality=85)
    made["small"] = folder / "small.jpg"
    # Transparent: a garment-like shape on nothing.
    rgba = Image.new("RGBA", (2000, 1500), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse((400, 300, 1600, 1200), fill=(40, 90, 200, 255))
    rgba.save(folder / "transparent.png")
    made["transparent"] = folder / "transparent.png"
    _photo_like((2000, 1500), PHOTOS[2]).save(folder / "opaque.png")
    made["opaque"] = folder / "opaque.png"
    with Image.open(PHOTOS[3]) as photo:
        pillow_heif.from_pillow(ImageOps.exif_transpose(photo).convert("RGB")).save(folder / "shirt.heic", quality=80)
    made["heic"] = folder / "shirt.heic"
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 100)
    made["broken"] = folder / "broken.jpg"
    return made


RESIZE_JS = """async ({index, options}) => {
  const file = document.querySelector('#files').files[index];
  const result = await window.closetUpload.resizeForUpload(file, options || {});
  const bytes = new Uint8Array(await result.file.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return {...result, file: undefined, name: result.file.name, fileType: result.file.type, data: btoa(binary)};
}"""


@pytest.fixture(scope="module")
def resized(browser, static_web, images):
    """Every generated input through resizeForUpload in Chromium, once."""
    page = browser.new_page()
    try:
        page.goto(static_web.url + "/test/resize.html")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        names = ["portrait", "landscape", "small", "transparent", "opaque", "heic", "broken"]
        page.set_input_files("#files", [str(images[name]) for name in names])
        out = {}
        for index, name in enumerate(names):
            answer = page.evaluate(RESIZE_JS, {"index": index, "options": None})
            answer["bytes"] = base64.b64decode(answer.pop("data"))
            out[name] = answer
        answer = page.evaluate(RESIZE_JS, {"index": 1, "options": {"maxSide": 500, "quality": 0.5}})
        answer["bytes"] = base64.b64decode(answer.pop("data"))
        out["landscape_500"] = answer
        return out
    finally:
        page.close()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


@needs_browser
def test_resize_shrinks_to_1200_and_never_upscales(resized, images):
    landscape = resized["landscape"]
    assert landscape["resized"] and landscape["fallback"] is None
    assert (landscape["width"], landscape["height"]) == (1200, 900)
    assert (landscape["originalWidth"], landscape["originalHeight"]) == (4000, 3000)
    assert landscape["type"] == landscape["fileType"] == "image/jpeg" and landscape["name"] == "landscape.jpg"
    assert landscape["bytesBefore"] == images["landscape"].stat().st_size
    assert landscape["bytesAfter"] == len(landscape["bytes"]) < landscape["bytesBefore"] / 5
    image = _open(landscape["bytes"])
    assert image.format == "JPEG" and image.size == (1200, 900)
    assert _open(resized["landscape_500"]["bytes"]).size == (500, 375)
    assert resized["landscape_500"]["bytesAfter"] < landscape["bytesAfter"]

    small = resized["small"]  # already under 1200 px: the original, untouched
    assert not small["resized"] and small["fallback"] == "already small"
    assert small["bytes"] == images["small"].read_bytes() and (small["width"], small["height"]) == (800, 600)


@needs_browser
def test_resize_keeps_a_phone_portrait_upright(resized, images):
    portrait = resized["portrait"]
    assert portrait["resized"] and (portrait["width"], portrait["height"]) == (900, 1200)
    image = _open(portrait["bytes"])
    assert image.size == (900, 1200)
    assert image.getexif().get(0x0112, 1) == 1  # the pixels are upright: no orientation left to apply
    expected = Image.open(images["portrait_expected"])
    upright = _difference(image, expected)
    assert upright < 12, upright
    assert upright * 3 < _difference(image, expected.rotate(180)), "the photo came out upside down"


@needs_browser
def test_resize_keeps_transparency_as_png(resized):
    transparent = resized["transparent"]
    assert transparent["resized"] and transparent["type"] == "image/png" and transparent["name"] == "transparent.png"
    image = _open(transparent["bytes"])
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (1200, 900)
    assert image.getpixel((5, 5))[3] == 0 and image.getpixel((600, 450))[3] == 255
    opaque = resized["opaque"]  # a PNG without transparency becomes a (much smaller) JPEG
    assert opaque["resized"] and opaque["type"] == "image/jpeg" and _open(opaque["bytes"]).format == "JPEG"
    assert opaque["bytesAfter"] < opaque["bytesBefore"] / 4


@needs_browser
def test_resize_falls_back_to_the_original(resized, images):
    for name in ("heic", "broken"):  # Chromium decodes no HEIC; the broken one nobody can
        answer = resized[name]
        assert not answer["resized"] and answer["fallback"].startswith("undecodable"), answer["fallback"]
        assert answer["bytes"] == images[name].read_bytes()
        assert answer["bytesBefore"] == answer["bytesAfter"] == images[name].stat().st_size
        assert answer["width"] is None
    # The browser's type for .heic (Playwright says image/heif), else the module's guess: both are accepted.
    assert resized["heic"]["type"] in ("image/heic", "image/heif") and resized["heic"]["name"] == "shirt.heic"


UPLOAD_JS = """async ({retries, fileName, category}) => {
  const file = new File([new Uint8Array(5000)], fileName, {type: 'image/jpeg'});
  const events = [];
  try {
    const result = await window.closetUpload.uploadPhoto(file, {
      uploadUrlEndpoint: '/fake/upload_url', authToken: 'tok', userId: 'u1', clothId: 'c1', category,
      retries, backoffMs: 20, onProgress: (p) => events.push(p.phase)});
    return {ok: true, result, events};
  } catch (error) {
    return {ok: false, status: error.status, message: error.message, events};
  }
}"""


@needs_browser
def test_upload_sends_the_signed_headers_and_retries_a_bounded_number_of_times(browser, static_web):
    page = browser.new_page()
    try:
        page.goto(static_web.url + "/test/resize.html")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        seen = {"url": [], "put": []}
        plan = {"put": []}
        signed_headers = {"Content-Type": "image/jpeg", "x-goog-content-length-range": "0,25000000"}

        def upload_url(route):
            request = route.request
            seen["url"].append({"auth": request.headers.get("authorization"), "body": json.loads(request.post_data)})
            body = json.loads(request.post_data)
            if body["fileName"] == "refused.jpg":
                route.fulfill(status=400, content_type="application/json", body='{"error": "bad file name"}')
                return
            route.fulfill(status=200, content_type="application/json", body=json.dumps({
                "url": static_web.url + "/fake/put?X-Goog-Signature=abc", "method": "PUT", "headers": signed_headers,
                "objectKey": "uploads/u1/c1/" + body["fileName"], "expiresAt": "2999-01-01T00:00:00Z"}))

        def put(route):
            request = route.request
            seen["put"].append({"method": request.method, "headers": request.headers,
                                "size": len(request.post_data_buffer or b"")})
            route.fulfill(status=plan["put"].pop(0) if plan["put"] else 200, body="")

        page.route("**/fake/upload_url", upload_url)
        page.route("**/fake/put*", put)

        plan["put"] = [503, 500]
        answer = page.evaluate(UPLOAD_JS, {"retries": 3, "fileName": "shirt.jpg"})
        assert answer["ok"], answer
        assert answer["result"]["attempts"] == 3 and answer["result"]["objectKey"] == "uploads/u1/c1/shirt.jpg"
        assert answer["events"].count("retry") == 2 and answer["events"][-1] == "done"
        assert seen["url"][0] == {"auth": "Bearer tok", "body": {
            "userId": "u1", "clothId": "c1", "fileName": "shirt.jpg", "contentType": "image/jpeg"}}
        assert len(seen["url"]) == 1  # the URL was still valid: asked once
        assert [p["method"] for p in seen["put"]] == ["PUT"] * 3
        for sent in seen["put"]:
            assert sent["headers"]["content-type"] == "image/jpeg"
            assert sent["headers"]["x-goog-content-length-range"] == "0,25000000"
            assert "authorization" not in sent["headers"]  # the bearer token never goes to the bucket
            assert sent["size"] == 5000

        seen["put"].clear()
        plan["put"] = [503, 503, 503]
        answer = page.evaluate(UPLOAD_JS, {"retries": 1, "fileName": "shirt.jpg"})
        assert not answer["ok"] and answer["status"] == 503 and len(seen["put"]) == 2  # 1 try + 1 retry

        seen["put"].clear()
        plan["put"] = [413]
        answer = page.evaluate(UPLOAD_JS, {"retries": 3, "fileName": "shirt.jpg"})
        assert not answer["ok"] and answer["status"] == 413 and len(seen["put"]) == 1  # not retried

        answer = page.evaluate(UPLOAD_JS, {"retries": 3, "fileName": "refused.jpg"})
        assert not answer["ok"] and answer["status"] == 400 and "bad file name" in answer["message"]

        # The user's pick goes to upload_url, which signs it into the URL as x-goog-meta-category.
        seen["url"].clear()
        answer = page.evaluate(UPLOAD_JS, {"retries": 0, "fileName": "shoes.jpg", "category": "SHOES"})
        assert answer["ok"] and seen["url"][0]["body"]["category"] == "SHOES"
    finally:
        page.close()


FOLLOW_JS = """async () => {
  const seen = [];
  const result = await window.closetUpload.followJob({
    statusEndpoint: '/fake/status', authToken: 'tok', userId: 'u1', clothId: 'c1', jobId: 'j1',
    intervalMs: 20, onProgress: (s) => seen.push(s.currentStep + ':' + s.progressPercentage)});
  return {result, seen};
}"""


@needs_browser
def test_follow_job_polls_until_the_result(browser, static_web):
    page = browser.new_page()
    try:
        page.goto(static_web.url + "/test/resize.html")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        document = {"jobId": "j1", "success": True, "allSegmentedItems": []}
        def state(name, step, percent, result=None):
            return 200, {"state": name, "currentStep": step, "progressPercentage": percent, "result": result}

        answers = [(404, {"error": "no such job (yet)"}), (503, {"error": "busy"}),
                   state("processing", "REMOVING_BACKGROUND", 10), state("processing", "ANALYZED", 50),
                   state("completed", "COMPLETED", 100, document)]
        queries = []

        def status(route):
            queries.append((route.request.url, route.request.headers.get("authorization")))
            code, body = answers.pop(0) if answers else (500, {})
            route.fulfill(status=code, content_type="application/json", body=json.dumps(body))

        page.route("**/fake/status*", status)
        answer = page.evaluate(FOLLOW_JS)
        assert answer["result"] == document
        assert answer["seen"] == ["REMOVING_BACKGROUND:10", "ANALYZED:50", "COMPLETED:100"]
        assert len(queries) == 5 and all(auth == "Bearer tok" for _, auth in queries)
        assert "userId=u1" in queries[0][0] and "clothId=c1" in queries[0][0] and "jobId=j1" in queries[0][0]

        answers[:] = [(401, {"error": "wrong bearer token"})]
        refused = page.evaluate("""() => window.closetUpload.followJob({statusEndpoint: '/fake/status',
            authToken: 'x', userId: 'u1', clothId: 'c1', jobId: 'j1', intervalMs: 20})
            .then(() => 'resolved', (e) => e.name + ':' + e.status + ':' + e.message)""")
        assert refused == "UploadError:401:wrong bearer token"
    finally:
        page.close()


# == the demo page against the local topology ======================================================
@pytest.fixture(scope="module")
def topo():
    topology = TopologyUnderTest({"CLOSET_UPLOAD_URL_SECRET": SECRET, "CLOSET_EXPAND_POLICY": "never"})
    try:
        topology.start()
        topology.publish(topology.topic_of("remove_background"), b"{}", {"warmup": "true"})  # load IS-Net now
        topology.start_web()
        yield topology
    finally:
        web = getattr(topology, "web", None)
        if web is not None:
            web.stop()
        topology.stop()
        topology.remove_workdir()


@pytest.fixture(scope="module")
def demo_runs(browser, topo, images):
    """The three photos picked on three demo pages at once (phone-sized and desktop viewports);
    each test below waits for its own page."""
    cases = {
        "photo": (PHOTOS[1], {"width": 1100, "height": 900}),
        "portrait": (images["portrait"], {"width": 390, "height": 844}),  # a phone's screen
        "heic": (images["heic"], {"width": 390, "height": 844}),
    }
    runs = {}
    for name, (path, viewport) in cases.items():
        page = browser.new_page(viewport=viewport)
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.goto(topo.web.url + "/demo/")
        page.wait_for_function("window.closetDemo && window.closetDemo.state === 'idle'", timeout=30_000)
        page.set_input_files("#photo", str(path))
        runs[name] = SimpleNamespace(page=page, path=Path(path), errors=errors, demo=None)
    yield runs
    for run in runs.values():
        run.page.close()


def _finish(run, topo, tmp_path_factory, name: str) -> dict:
    """Wait for the page's result, keep a screenshot, and return the page's record of the run."""
    if run.demo is not None:
        return run.demo
    page = run.page
    try:
        page.wait_for_function("['done', 'failed'].includes(window.closetDemo.state)", timeout=JOB_TIMEOUT_MS)
    except Exception:
        print(topo.log_tails(30))
        raise
    demo = page.evaluate("window.closetDemo")
    page.wait_for_function("[...document.images].filter(i => i.src && !i.closest('[hidden]')).every(i => i.complete)",
                           timeout=30_000)
    folder = tmp_path_factory.mktemp("screenshots")
    shot = folder / f"demo-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("CLOSET_SCREENSHOT_DIR"):
        target = Path(os.environ["CLOSET_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    assert shot.stat().st_size > 10_000
    run.demo = demo
    assert not run.errors, run.errors
    assert demo["state"] == "done", (demo["error"], demo["result"] and demo["result"].get("errorMessage"),
                                     topo.log_tails(20))
    return demo


def _check_page(page, demo) -> None:
    """What a person sees: the steps, the cut-out, the crops with their categories, the stage times."""
    assert demo["phases"] == ["optimising", "uploading", "processing", "done"]
    assert demo["statuses"] and demo["statuses"][-1]["state"] == "completed"
    percents = [s["progressPercentage"] for s in demo["statuses"]]
    assert percents == sorted(percents) and percents[-1] == 100
    assert page.locator("#phase").inner_text().startswith("Done")
    assert page.locator('#steps li[data-status="done"]').count() == 6
    assert page.locator("#upload-bar").get_attribute("value") == "100"
    assert page.evaluate("document.querySelector('#cutout').naturalWidth") > 0
    result = demo["result"]
    items = page.locator("#items li")
    assert items.count() == len(result["allSegmentedItems"]) >= 1
    assert page.evaluate("[...document.querySelectorAll('#items img')].every(i => i.naturalWidth > 0)")
    categories = [c.inner_text() for c in page.locator("#items .category").all()]
    assert categories == [i["category"] or "no category" for i in result["allSegmentedItems"]]
    stages = page.evaluate("[...document.querySelectorAll('#timings tbody tr')].map(r => r.dataset.stage)")
    assert {"ingest", "remove_background", "segment", "expand", "deliver", "total"} <= set(stages)


@needs_topology
def test_demo_page_processes_a_fixture_photo(demo_runs, topo, tmp_path_factory):
    run = demo_runs["photo"]
    demo = _finish(run, topo, tmp_path_factory, "photo")
    _check_page(run.page, demo)
    # 400x534 is already small: the original went up unchanged.
    assert demo["resize"]["fallback"] == "already small"
    assert topo.read_object("uploads", demo["upload"]["objectKey"]) == run.path.read_bytes()
    assert demo["result"]["success"] and demo["result"]["userId"] == "demo"


@needs_topology
def test_demo_page_shrinks_a_12mp_phone_portrait_upright(demo_runs, topo, images, tmp_path_factory):
    run = demo_runs["portrait"]
    demo = _finish(run, topo, tmp_path_factory, "portrait")
    _check_page(run.page, demo)
    assert demo["resize"]["resized"] and demo["resize"]["bytesAfter"] < demo["resize"]["bytesBefore"] / 5
    assert run.page.locator("#stage-optimise .detail").inner_text().startswith(
        f"{demo['resize']['bytesBefore'] / 1e6:.1f} MB →")
    uploaded = _open(topo.read_object("uploads", demo["upload"]["objectKey"]))
    assert uploaded.format == "JPEG" and max(uploaded.size) <= 1200 and uploaded.size == (900, 1200)
    assert uploaded.getexif().get(0x0112, 1) == 1
    expected = Image.open(images["portrait_expected"])
    assert _difference(uploaded, expected) * 3 < _difference(uploaded, expected.rotate(180))
    assert _difference(uploaded, expected) < 12
    # The pipeline saw it upright too: the cut-out is portrait, at the uploaded size.
    with urllib.request.urlopen(demo["result"]["removedBgImageUrl"], timeout=30) as response:
        assert _open(response.read()).size == (900, 1200)


@needs_topology
def test_demo_page_uploads_an_undecodable_heic_as_is(demo_runs, topo, images, tmp_path_factory):
    run = demo_runs["heic"]
    demo = _finish(run, topo, tmp_path_factory, "heic")
    _check_page(run.page, demo)
    assert not demo["resize"]["resized"] and demo["resize"]["fallback"].startswith("undecodable")
    assert "Kept the original" in run.page.locator("#stage-optimise .detail").inner_text()
    assert demo["upload"]["contentType"] in ("image/heic", "image/heif")
    assert demo["upload"]["objectKey"].endswith("/shirt.heic")
    assert topo.read_object("uploads", demo["upload"]["objectKey"]) == images["heic"].read_bytes()
    assert demo["result"]["success"] and demo["result"]["allSegmentedItems"]


def _status(topo, params: dict, token: str | None = SECRET, method: str = "GET", headers: dict | None = None):
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{topo.functions['status']}/?{query}", method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@needs_topology
def test_status_function_answers_only_its_caller_and_cross_origin(demo_runs, topo, tmp_path_factory):
    run = demo_runs["photo"]
    demo = _finish(run, topo, tmp_path_factory, "photo")
    job, cloth, key = demo["result"]["jobId"], demo["result"]["clothId"], demo["upload"]["objectKey"]
    status, _, body = _status(topo, {"userId": "demo", "clothId": cloth, "jobId": job})
    assert status == 200 and json.loads(body)["state"] == "completed" and json.loads(body)["result"]["jobId"] == job
    assert _status(topo, {"userId": "demo", "clothId": cloth, "jobId": job}, token=None)[0] == 401
    assert _status(topo, {"userId": "demo", "clothId": cloth, "jobId": job}, token="wrong")[0] == 401
    assert _status(topo, {"userId": "intruder", "clothId": cloth, "jobId": job})[0] == 404
    assert _status(topo, {"userId": "intruder", "objectKey": key})[0] == 404
    assert _status(topo, {"userId": "demo", "clothId": cloth, "jobId": "0" * 20})[0] == 404
    status, headers, _ = _status(topo, {}, token=None, method="OPTIONS", headers={
        "Origin": topo.web.url, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
    # A real cross-origin call from the demo page's origin straight to the function (preflight included).
    answer = run.page.evaluate("""async ({url, token}) => {
        const response = await fetch(url, {headers: {Authorization: 'Bearer ' + token}});
        return {status: response.status, body: await response.json()};
    }""", {"url": f"{topo.functions['status']}/?userId=demo&objectKey={urllib.parse.quote(key)}", "token": SECRET})
    assert answer["status"] == 200 and answer["body"]["jobId"] == job and answer["body"]["state"] == "completed"


# == refusals a person reads, and the figures the page takes from the server =====================
@needs_topology
@pytest.mark.parametrize(("case", "query", "file_name", "content", "expected"), [
    ("a text file", "", "notes.txt", b"not a photo at all\n", "This file is not a photo we can read. Please choose a "),
    ("a wrong key", "?authToken=wrong", "shirt.jpg", None, "The upload service did not accept this page's key."),
    ("a user id the rule refuses", "?userId=a%20b", "shirt.jpg", None, "The app sent an unusable user id"),
])
def test_demo_page_shows_upload_urls_refusals_as_sentences(browser, topo, tmp_path, case, query, file_name,
                                                           content, expected):
    """Every refusal from upload_url carries a sentence for the person uploading; the demo page shows
    it as its status line, never the developer's message (kept in window.closetDemo.error)."""
    from shared.formats import spoken

    path = tmp_path / file_name
    path.write_bytes(content if content is not None else PHOTOS[0].read_bytes())
    page = browser.new_page()
    try:
        page.goto(topo.web.url + "/demo/" + query)
        page.wait_for_function("window.closetDemo && window.closetDemo.state === 'idle'", timeout=90_000)
        page.set_input_files("#photo", str(path))
        page.wait_for_function("window.closetDemo.state === 'failed'", timeout=90_000)
        phase = page.locator("#phase").inner_text()
        demo = page.evaluate("window.closetDemo")
    finally:
        page.close()
    assert phase.startswith(expected), (case, phase)
    assert "upload_url" not in phase and "contentType" not in phase and "Bearer" not in phase, phase
    assert demo["error"].startswith("upload_url: "), demo["error"]  # the developer's words stay available
    if case == "a text file":
        assert phase.endswith(f"Please choose a {spoken()} photo."), phase


def test_the_page_and_the_browser_module_take_their_figures_from_one_place(topo):
    """The step percentages come from shared/documents.py's table, the formats from shared/formats.py
    (through /config.json); the browser module's extension table is checked against the latter."""
    import re

    from closet_pipeline.dev.web import step_percentages
    from shared.documents import STEP_PERCENT
    from shared.formats import TYPES_BY_EXTENSION, spoken

    with urllib.request.urlopen(topo.web.url + "/config.json", timeout=10) as response:
        config = json.loads(response.read())
    assert config["stepPercent"] == json.loads(json.dumps(step_percentages()))
    for step in (ProgressStep.REMOVING_BACKGROUND, ProgressStep.ANALYZING, ProgressStep.ANALYZED):
        assert config["stepPercent"][step.value] == STEP_PERCENT[step]
    assert config["stepPercent"]["COMPLETED"] == 100  # done, as the status function answers a finished job
    assert config["formats"] == spoken()
    page = (Path(__file__).parent.parent / "clients" / "web" / "demo" / "index.html").read_text()
    assert not re.search(r"[0-9]+&nbsp;%|JPEG", page), "the demo page writes a percentage or a format itself"
    module = (Path(__file__).parent.parent / "clients" / "web" / "closet-upload.js").read_text()
    table = re.search(r"const TYPES_BY_EXTENSION = \{(.*?)\};", module, re.DOTALL).group(1)
    assert dict(re.findall(r'(\w+): "([^"]+)"', table)) == TYPES_BY_EXTENSION
