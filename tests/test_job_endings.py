"""How jobs end under what production does and the old stand-ins forgave (issue 11), in one process
over the strict in-memory store (links that carry their signing time and expire; about one write a
second per object). Each test names the failure it guards against; each failed on the code before.

remove.bg's local fake stands in for IS-Net where the model is not the point, so these run in seconds.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

from closet_pipeline.adapters.memory import LinkRefused, MemoryBlobStore
from closet_pipeline.local_run import LocalPipeline
from shared.documents import ProgressEvent, ResultDocument
from shared.http.status import job_status
from shared.layout import job_id_for, results_prefix, upload_key
from shared.messages import Category, ImageType, Job, JobRequest
from shared.stages.cache import fingerprint
from tests.conftest import configure
from tests.fakes.gemini import FakeGemini
from tests.fakes.removebg import FakeRemoveBg

TSHIRT = "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg"
PANTS = "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg"
RB_KEY = "rb-endings"


@pytest.fixture
def removebg():
    with FakeRemoveBg(api_key=RB_KEY) as fake:
        yield fake


def fast(settings, removebg, **changes):
    return configure(settings, **{"background_providers": ("removebg",), "removebg_api_key": RB_KEY,
                                  "removebg_url": removebg.url, "expand_policy": "never", **changes})


def published(pipeline: LocalPipeline, topic: str, job_id: str) -> list[bytes]:
    return [data for t, data, attrs in pipeline.bus.published if t == topic and attrs.get("jobId") == job_id]


def results(pipeline: LocalPipeline, job_id: str) -> list[ResultDocument]:
    return [ResultDocument.model_validate_json(d) for d in published(pipeline, pipeline.topology.results_topic, job_id)]


def progress(pipeline: LocalPipeline, job_id: str) -> list[ProgressEvent]:
    return [ProgressEvent.model_validate_json(d) for d in published(pipeline, pipeline.topology.progress_topic, job_id)]


def stage_messages(pipeline: LocalPipeline, stage: str, job_id: str) -> list[bytes]:
    return published(pipeline, pipeline.topology.stage(stage).topic, job_id)


def stored_result(store: MemoryBlobStore, document: ResultDocument) -> ResultDocument:
    key = results_prefix(document.user_id, document.cloth_id, document.job_id) + "result.json"
    return ResultDocument.model_validate_json(store.read(key).data)


# 1 -------------------------------------------------------------------------------------------------
def test_cache_on_with_links_that_change_every_signing(settings, removebg, photo_bytes):
    """Item 1: cache.save looked links up by re-signing them (KeyError once a signature's time moved)."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg), store)
    try:
        first = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u1", cloth_id="c1")
        again = pipeline.process_bytes(photo_bytes(TSHIRT), "b.jpg", user_id="u2", cloth_id="c2")
    finally:
        pipeline.close()
    assert first.success and not first.cache_hit and again.success and again.cache_hit
    for document in (first, again):
        assert store.open_url(document.removed_bg_image_url)[:4] == b"\x89PNG"
        assert all(store.key_of(item.url).startswith(results_prefix(document.user_id, document.cloth_id,
                                                                    document.job_id)) for item in document.all_segmented_items)


# 2, 12 ---------------------------------------------------------------------------------------------
def test_a_late_failure_never_touches_a_finished_job(settings, removebg, photo_bytes):
    """Items 2 and 12: a dead-lettered or malformed copy of a finished job's message used to delete its
    outputs, overwrite result.json with a failure and send FAILED after COMPLETED."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), store, keep_work=True)
    try:
        done = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u3", cloth_id="c3")
        prefix = results_prefix("u3", "c3", done.job_id)
        files_before = store.list(prefix)
        segment_message = stage_messages(pipeline, "segment", done.job_id)[0]
        pipeline.dispatcher.handle_dead_letter(segment_message, {"CloudPubSubDeadLetterSourceSubscription": "segment"})
        broken = segment_message.replace(b'"cutout"', b'"cutoutt"')  # bad schema, readable job
        pipeline.dispatcher.handle("segment", broken)
    finally:
        pipeline.close()
    assert store.list(prefix) == files_before
    assert stored_result(store, done).success
    assert [r.success for r in results(pipeline, done.job_id)] == [True]
    assert "FAILED" not in [e.status for e in progress(pipeline, done.job_id)]
    assert job_status(store, "u3", "c3", done.job_id).state == "completed"


# 3 -------------------------------------------------------------------------------------------------
def test_the_last_garment_delivered_twice_at_once_finishes_once(settings, removebg, photo_bytes):
    """Item 3: both deliveries of the last garment ran finish(); result.json could differ from the
    published result."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), store, keep_work=True)
    held: list[bytes] = []
    deliver_topic = pipeline.topology.stage("deliver").topic
    original = pipeline.bus._handlers[deliver_topic]
    pipeline.bus._handlers[deliver_topic] = [lambda data, attributes, attempt: held.append(data)]
    try:
        first = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u4", cloth_id="c4")
        assert not first.success  # never finished: deliver was held back (a KeyError from the harness)
    except KeyError:
        pass
    pipeline.bus._handlers[deliver_topic] = original
    assert held
    job_id = json.loads(held[0])["job"]["jobId"]
    errors = []

    def deliver(data: bytes) -> None:
        try:
            pipeline.dispatcher.handle("deliver", data)
        except Exception as exc:  # InProgress: Pub/Sub redelivers it
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(data,)) for data in held for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in errors:  # the refused duplicates come back, as Pub/Sub would redeliver them
        for data in held:
            pipeline.dispatcher.handle("deliver", data)
    pipeline.close()
    out = results(pipeline, job_id)
    assert len(out) == 1 and out[0].success
    assert stored_result(store, out[0]).model_dump(exclude={"removed_bg_image_url", "segmented_image_url",
                                                            "inpainted_image_url", "all_segmented_items",
                                                            "all_expanded_items"}) == \
        out[0].model_dump(exclude={"removed_bg_image_url", "segmented_image_url", "inpainted_image_url",
                                   "all_segmented_items", "all_expanded_items"})


# 4 -------------------------------------------------------------------------------------------------
def test_concurrent_duplicates_do_not_redo_paid_generation(settings, removebg, photo_bytes):
    """Item 4: two concurrent deliveries of one expand message both called the paid model."""
    with FakeGemini(slow_s=1.5) as gemini:
        configured = fast(settings, removebg, cache_enabled=False, expand_policy="always",
                          gemini_api_key="fake-gemini-key", gemini_base_url=gemini.url)
        pipeline = LocalPipeline(configured, MemoryBlobStore(), keep_work=True)
        expand_topic = pipeline.topology.stage("expand").topic
        held: list[bytes] = []
        original = pipeline.bus._handlers[expand_topic]
        pipeline.bus._handlers[expand_topic] = [lambda data, attributes, attempt: held.append(data)]
        try:
            pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u5", cloth_id="c5")
        except KeyError:
            pass  # held back: no result yet
        pipeline.bus._handlers[expand_topic] = original
        gemini.fail_next("slow")
        refused = []

        def expand() -> None:
            try:
                pipeline.dispatcher.handle("expand", held[0])
            except Exception as exc:
                refused.append(type(exc).__name__)

        threads = [threading.Thread(target=expand) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        pipeline.dispatcher.handle("expand", held[0])  # the refused duplicate, redelivered later
        pipeline.close()
    assert refused == ["InProgress"]
    assert len(gemini.calls) == 1


# 7, 13 ---------------------------------------------------------------------------------------------
def test_the_cache_never_hands_one_users_pick_to_another(settings, removebg, photo_bytes):
    """Items 7 and 13: user 301's pick (SHOES) was baked into the cache and reached 302 and 303."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg), store)
    try:
        a = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", user_id="u301", cloth_id="c", category=Category.SHOES)
        b = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", user_id="u302", cloth_id="c")
        c = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", user_id="u303", cloth_id="c", category=Category.TOP)
    finally:
        pipeline.close()
    assert a.suggested_category is Category.SHOES and a.all_segmented_items[0].category is Category.SHOES
    assert b.cache_hit and b.suggested_category is not Category.SHOES
    assert b.all_segmented_items[0].category is not Category.SHOES
    assert c.cache_hit and c.suggested_category is Category.TOP and c.all_segmented_items[0].category is Category.TOP
    assert b.finished_at > a.finished_at and c.finished_at > b.finished_at  # fresh on every hit


def test_a_degraded_result_is_not_cached(settings, removebg, photo_bytes):
    """Item 7: a result whose product shot failed (429, timeout, no key) was cached as if final."""
    with FakeGemini() as gemini:
        configured = fast(settings, removebg, expand_policy="always", gemini_api_key="fake-gemini-key",
                          gemini_base_url=gemini.url)
        pipeline = LocalPipeline(configured, MemoryBlobStore())
        try:
            gemini.fail_next("server_error", "server_error", "server_error")
            first = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u7", cloth_id="c7")
            gemini.failures.clear()  # the provider is back
            second = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u8", cloth_id="c8")
        finally:
            pipeline.close()
    assert first.success and not first.all_expanded_items[0].expanded
    assert not second.cache_hit and second.all_expanded_items[0].expanded  # generated this time


# 8 -------------------------------------------------------------------------------------------------
def test_status_signs_links_afresh(settings, removebg, photo_bytes):
    """Item 8: the status endpoint returned result.json's links, dead after the signing TTL."""
    now = [time.time()]
    store = MemoryBlobStore(signed_url_ttl_s=60, clock=lambda: now[0])
    pipeline = LocalPipeline(fast(settings, removebg), store)
    try:
        done = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u9", cloth_id="c9")
    finally:
        pipeline.close()
    now[0] += 3600  # an hour later the app asks again
    with pytest.raises(LinkRefused):
        store.open_url(done.removed_bg_image_url)
    answer = job_status(store, "u9", "c9", done.job_id)
    assert answer.state == "completed"
    assert store.open_url(answer.result.removed_bg_image_url)[:4] == b"\x89PNG"


def test_a_webhook_delivery_after_the_links_lifetime_hands_over_links_that_work(settings, removebg, photo_bytes):
    """Issue 19 item 5: the result on the topic names files; the webhook function signs them for
    each delivery. The receiver fails the first delivery; Pub/Sub retries it after the links'
    lifetime (the webhook's backoff grows to 10 minutes over up to 100 deliveries: its retry window
    is hours, the links' lifetime one), and the links of that second delivery still verify."""
    import flask
    from functions_framework.event_conversion import background_event_to_cloud_event

    from shared.runtime.entry.subscriber import webhook_function
    from shared.runtime.webhook import WebhookFailed
    from shared.topology import declaration

    now = [time.time()]
    lifetime = declaration().links.result_s
    webhook = declaration().function("webhook").retry
    assert webhook.window_s > lifetime  # why links cannot be signed once, when the job ends
    store = MemoryBlobStore(clock=lambda: now[0])
    published: list[bytes] = []
    pipeline = LocalPipeline(fast(settings, removebg), store)
    pipeline.bus.subscribe(pipeline.topology.results_topic, lambda data, attrs, _: published.append(data))
    try:
        pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u19", cloth_id="c19")
    finally:
        pipeline.close()
    (body,) = published
    on_topic = ResultDocument.model_validate_json(body)
    assert on_topic.removed_bg_image_url == "cutout.png" and all("://" not in u for u in on_topic.urls())

    class Receiver:  # fails the first POST, takes the second
        def __init__(self) -> None:
            self.bodies: list[bytes] = []

        def send(self, body: bytes, *, time_left_s: float | None = None) -> bool:
            self.bodies.append(body)
            if len(self.bodies) == 1:
                raise WebhookFailed("HTTP 500")
            return True

    receiver = Receiver()
    handle = webhook_function(sender=receiver, store=store)
    envelope = {"subscription": "projects/p/subscriptions/closet-webhook-push",
                "message": {"data": base64.b64encode(body).decode(), "attributes": {"jobId": on_topic.job_id},
                            "messageId": "1", "publishTime": "2026-12-03T10:00:00Z"}}
    app = flask.Flask(__name__)

    def deliver(attempt: int) -> None:
        with app.test_request_context("/projects/p/topics/closet-cloth-results", method="POST",
                                      json={**envelope, "deliveryAttempt": attempt}):
            handle(background_event_to_cloud_event(flask.request))

    with pytest.raises(WebhookFailed):
        deliver(1)
    first = ResultDocument.model_validate_json(receiver.bodies[0])
    assert store.open_url(first.removed_bg_image_url)[:4] == b"\x89PNG"  # good when sent
    now[0] += lifetime + webhook.backoff_s(5)  # the 6th delivery, more than the lifetime later
    with pytest.raises(LinkRefused):
        store.open_url(first.removed_bg_image_url)
    deliver(6)
    second = ResultDocument.model_validate_json(receiver.bodies[1])
    assert second.urls() and all(store.open_url(url) for url in second.urls())
    assert second.with_urls(lambda url: url.split("?")[0].rsplit("/", 1)[1]).removed_bg_image_url == "cutout.png"


# 9, 14 ---------------------------------------------------------------------------------------------
def test_an_overwritten_upload_is_its_own_job(settings, removebg, photo_bytes):
    """Items 9 and 14: the job named after photo A's generation read photo B's bytes."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), store)
    key = upload_key("u10", "c10", "photo.jpg")
    jobs = []
    for name in (TSHIRT, PANTS):
        generation = store.write(key, photo_bytes(name), content_type="image/jpeg")
        jobs.append(Job(job_id=job_id_for(key, generation), cloth_id="c10", user_id="u10", upload=key,
                        upload_generation=generation, upload_name="photo.jpg"))
        time.sleep(1.05)  # GCS takes one write a second to one object name
    try:
        for job in jobs:
            pipeline.bus.publish(pipeline.topology.first.topic, JobRequest(job=job).to_json())
        pipeline.bus.run_until_idle()
    finally:
        pipeline.close()
    old, new = (results(pipeline, job.job_id)[0] for job in jobs)
    assert not old.success and old.error_code == "UPLOAD_NOT_FOUND"
    assert new.success and new.upload_generation == jobs[1].upload_generation


# 11 ------------------------------------------------------------------------------------------------
def test_a_bug_ends_as_internal_error_without_rerunning_finished_stages(settings, removebg, photo_bytes, monkeypatch):
    """Item 11: an ordinary exception was retried until dead-lettered, and INTERNAL_ERROR was never produced."""
    from shared.stages import segment

    calls = []

    def broken(message, ctx):
        calls.append(message.attempt)
        raise RuntimeError("a bug")

    monkeypatch.setattr(segment, "run", broken)
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), store)
    try:
        done = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u11", cloth_id="c11")
    finally:
        pipeline.close()
    assert not done.success and done.error_code == "INTERNAL_ERROR"
    assert calls == [1, 2, 3]
    assert len(removebg.requests) == 1  # the finished stage before it ran once


def test_a_first_provider_that_cannot_load_hands_over(settings, removebg, photo_bytes, tmp_path):
    """Item 11: a missing model raised while the chain was built, so `local,removebg` never fell back."""
    configured = fast(settings, removebg, background_providers=("local", "removebg"), model_path=None,
                      model_dir=tmp_path)
    pipeline = LocalPipeline(configured, MemoryBlobStore())
    try:
        done = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u12", cloth_id="c12")
    finally:
        pipeline.close()
    assert done.success and done.providers["remove_background"] == "removebg"
    assert done.providers["remove_background_skipped"].startswith("local: The IS-Net")


# 16 ------------------------------------------------------------------------------------------------
def test_no_progress_after_the_end_and_sequences_grow(settings, removebg, photo_bytes):
    """Item 16: redelivered stage messages of a finished job sent COMPLETED 95 again, then 25 and 90."""
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), MemoryBlobStore(), keep_work=True)
    try:
        done = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u16", cloth_id="c16")
        before = progress(pipeline, done.job_id)
        for stage in ("remove_background", "expand", "deliver"):
            for data in stage_messages(pipeline, stage, done.job_id):
                pipeline.dispatcher.handle(stage, data)
        pipeline.bus.run_until_idle()  # what those deliveries forwarded runs too
    finally:
        pipeline.close()
    after = progress(pipeline, done.job_id)
    assert after == before and after[-1].status == "COMPLETED"
    sequences = [e.sequence for e in after]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert len(results(pipeline, done.job_id)) == 1


# 5 -------------------------------------------------------------------------------------------------
def eight_garments() -> bytes:
    """The repository's four garment photos, twice, tiled apart on white (as `make soak` makes them)."""
    import io

    from PIL import Image

    from closet_pipeline.dev.soak import tiled
    from tests.conftest import PHOTOS

    out = io.BytesIO()
    tiled([Image.open(path).convert("RGB") for path in sorted(PHOTOS.glob("*.jpg"))]).save(out, "JPEG", quality=92)
    return out.getvalue()


def test_eight_garments_join_in_parallel_without_a_hot_object(settings, removebg):
    """Item 5: state.json took one compare-and-swap per garment; GCS allows about one write a second
    to one object, so parallel garments met 429s. The strict store refuses a second write within a
    second, and counts every refusal."""
    store = MemoryBlobStore()
    pipeline = LocalPipeline(fast(settings, removebg, cache_enabled=False), store, workers=8)
    try:
        # Eight laid-out garments: said to be single items, as auto could take the lay-out for an outfit.
        done = pipeline.process_bytes(eight_garments(), "eight.jpg", user_id="u5", cloth_id="c5",
                                      image_type=ImageType.SINGLE_ITEM)
    finally:
        pipeline.close()
    assert done.success and len(done.all_segmented_items) == 8
    assert store.rate_limited == []
    assert len(results(pipeline, done.job_id)) == 1


def test_without_a_generator_a_result_is_final_until_one_is_configured(settings):
    """Item 7: a result made with no generator configured is cached for that configuration only: setting
    a key changes the settings' fingerprint, so the photo is processed again, with a product shot."""
    without = configure(settings, expand_policy="auto", gemini_api_key=None)
    with_key = configure(settings, expand_policy="auto", gemini_api_key="a-key")
    assert not without.expand_generation_enabled() and with_key.expand_generation_enabled()
    assert fingerprint(without) != fingerprint(with_key)
