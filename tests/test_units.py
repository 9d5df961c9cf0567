"""The small pieces on their own: segmentation rules, job state, cache keys, webhook signatures,
event decoding, configuration parsing."""

from __future__ import annotations

import base64
import json
import threading

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from closet_pipeline.adapters.local_folder import LocalFolderBlobStore
from closet_pipeline.adapters.memory import MemoryBlobStore
from shared.config import Settings
from shared.errors import InvalidObjectPath
from shared.providers.segmentation.items import crop_padding
from shared.providers.segmentation.mask_components import MaskComponentsSegmenter
from shared.runtime.events import from_cloud_event_data, job_request_from_notification
from shared.runtime.job_end import claim, mark_published
from shared.runtime.webhook import sign, verify
from shared.stages.cache import fingerprint
from shared.stages.garment_join import join_garment, joined_garments


def cutout_from(mask: np.ndarray) -> Image.Image:
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = mask.astype(np.uint8) * 255
    return Image.fromarray(rgba, "RGBA")


def test_segmenter_drops_specks_and_hanger_hooks_and_sorts_by_area():
    mask = np.zeros((600, 800), bool)
    mask[200:500, 100:400] = True  # a shirt
    mask[120:200, 248:252] = True  # the hanger's hook: 4 px wide, 80 px long
    mask[300:420, 500:700] = True  # a smaller garment
    mask[20:40, 20:40] = True  # a 400 px speck
    garments = MaskComponentsSegmenter(min_pixels=1000).segment(cutout_from(mask))
    assert [g.area_pixels for g in garments] == sorted((g.area_pixels for g in garments), reverse=True)
    assert len(garments) == 2
    shirt = garments[0]
    pad = crop_padding(300)
    left, top, right, bottom = shirt.bbox
    assert (left, right, bottom) == (100 - pad, 400 + pad, 500 + pad)
    # Of the 80 px hook at most a stub about as long as the opening radius (8 px here) stays.
    assert 200 - pad - 10 <= top <= 200 - pad
    assert abs(shirt.area_pixels - 300 * 300) < 300 * 300 * 0.01
    assert not shirt.touches_border


def test_padding_rule_and_border_contact():
    assert crop_padding(100) == 5 and crop_padding(600) == 12 and crop_padding(4000) == 20
    mask = np.zeros((300, 300), bool)
    mask[0:200, 50:250] = True  # cut off by the top edge
    (garment,) = MaskComponentsSegmenter().segment(cutout_from(mask))
    assert garment.touches_border and garment.bbox[1] == 0


@pytest.mark.parametrize("store_kind", ["memory", "folder"])
def test_join_and_claim_let_exactly_one_delivery_end_the_job(store_kind, tmp_path):
    """8 garments, each delivered 3 times at once: every garment counted once, no object written
    twice within a second (the strict store refuses that), and one of the deliveries that see the
    join complete wins the job's end."""
    store = MemoryBlobStore() if store_kind == "memory" else LocalFolderBlobStore(tmp_path)
    winners, lock = [], threading.Lock()

    def deliver(index: int) -> None:
        added, count = join_garment(store, "job1", index, json.dumps({"i": index}))
        if count == 8 and claim(store, "job1", f"deliver:{index}"):
            with lock:
                winners.append(index)

    threads = [threading.Thread(target=deliver, args=(i % 8,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [json.loads(raw)["i"] for raw in joined_garments(store, "job1")] == list(range(8))
    assert len(set(winners)) == 1  # one garment's deliveries (a redelivery of the winner may claim again)
    if store_kind == "memory":
        assert store.rate_limited == []
    winner = winners[0]
    assert not claim(store, "job1", "dead_letter")  # a late failure cannot take a live claim
    assert claim(store, "job1", f"deliver:{winner}")  # the winner's redelivery may finish what it started
    mark_published(store, "job1", f"deliver:{winner}")
    assert not claim(store, "job1", f"deliver:{winner}")  # published: nobody ends it again
    assert not claim(store, "job1", "dead_letter", take_over_after_s=0)


def test_an_abandoned_claim_is_taken_over_by_the_dead_letter_handler():
    store = MemoryBlobStore(write_interval_s=0)  # the takeover comes minutes later in reality, not now
    assert claim(store, "job2", "deliver:0")
    assert not claim(store, "job2", "dead_letter", take_over_after_s=60)  # still young
    assert claim(store, "job2", "dead_letter", take_over_after_s=0)  # its holder never published


def test_webhook_signature_rejects_tampering_and_replays():
    from shared.documents import ResultDocument

    body = ResultDocument(job_id="j", cloth_id="c", user_id="u", success=False, error_code="EMPTY_FILE").to_json()
    header = sign("s3cret", body, timestamp=1_000_000)
    assert verify("s3cret", body, header, now=1_000_010)
    assert not verify("other", body, header, now=1_000_010)
    assert not verify("s3cret", body + b" ", header, now=1_000_010)
    assert not verify("s3cret", body, header, now=1_000_000 + 3600)
    assert not verify("s3cret", body, "garbage", now=1_000_010)


def test_gcs_notification_becomes_a_job_with_a_deterministic_id():
    attributes = {"eventType": "OBJECT_FINALIZE", "objectId": "uploads/u1/c9/IMG 1.jpg", "objectGeneration": "17"}
    first, again = job_request_from_notification(attributes), job_request_from_notification(attributes)
    assert first.job.user_id == "u1" and first.job.cloth_id == "c9" and first.job.upload_name == "IMG 1.jpg"
    assert first.job.job_id == again.job.job_id
    newer = job_request_from_notification({**attributes, "objectGeneration": "18"})
    assert newer.job.job_id != first.job.job_id
    assert job_request_from_notification({**attributes, "eventType": "OBJECT_DELETE"}) is None
    for bad in ("uploads/u1/../x.jpg", "uploads/x.jpg", "results/u1/c1/a.jpg", "uploads/u 1/c1/a.jpg"):
        with pytest.raises(InvalidObjectPath):
            job_request_from_notification({**attributes, "objectId": bad})


def test_push_envelope_decoding():
    data = {"message": {"data": base64.b64encode(b"hi").decode(), "attributes": {"a": "b"}, "messageId": "7"},
            "deliveryAttempt": 3}
    pushed = from_cloud_event_data(data)
    assert (pushed.data, pushed.attributes, pushed.delivery_attempt, pushed.warm_up) == (b"hi", {"a": "b"}, 3, False)


def test_configuration_refuses_bad_values(monkeypatch):
    monkeypatch.setenv("CLOSET_BACKGROUND_PROVIDERS", "removebg, local")
    assert Settings().background_providers == ("removebg", "local")
    for name, value in [("CLOSET_BACKGROUND_PROVIDERS", "magic"), ("CLOSET_WORKING_MAX_SIDE", "10"),
                        ("CLOSET_EXPAND_POLICY", "sometimes"), ("CLOSET_MAX_UPLOAD_BYTES", "-1")]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):
            Settings()
        monkeypatch.delenv(name)
    assert fingerprint(Settings()) != fingerprint(Settings(working_max_side=1000))


def test_upload_metadata_carries_the_users_picks():
    from shared.messages import Category, ImageType, Job
    from shared.stages.ingest import with_upload_choices

    job = Job(job_id="j", cloth_id="c", user_id="u", upload="uploads/u/c/a.jpg")
    picked = with_upload_choices(job, {"category": "bottom", "image-type": "FULL_BODY"})
    assert picked.category_hint is Category.BOTTOM and picked.image_type is ImageType.FULL_BODY
    assert with_upload_choices(job, {"category": "<script>"}) == job


def test_a_documents_links_are_signed_at_once_each_file_once():
    """On Cloud Functions each link is a remote signBlob call: an outfit's links are signed in
    parallel, and a file named twice (a crop standing in for its product shot) is signed once."""
    from shared.documents import ExpandedItem, ResultDocument, SegmentedItem
    from shared.runtime.links import signed

    class SlowSigner(MemoryBlobStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls, self.running, self.most = [], 0, 0
            self.lock = threading.Lock()

        def url(self, key: str) -> str:
            with self.lock:
                self.calls.append(key)
                self.running += 1
                self.most = max(self.most, self.running)
            threading.Event().wait(0.05)  # a signBlob round trip
            with self.lock:
                self.running -= 1
            return super().url(key)

    items = [SegmentedItem(label="shirt", category="TOP", area_pixels=10, bbox=(0, 0, 1, 1), url=f"items/{i}.png",
                           thumbnail_url=f"items/{i}.thumb.webp") for i in range(4)]
    document = ResultDocument(job_id="j", cloth_id="c", user_id="u", success=True, removed_bg_image_url="cutout.png",
                              segmented_image_url="items/0.png", all_segmented_items=items,
                              all_expanded_items=[ExpandedItem(label="shirt", url=i.url, expanded=False, note="not needed")
                                                  for i in items])
    store = SlowSigner()
    out = signed(document, store)
    assert sorted(store.calls) == sorted(f"results/u/c/j/{n}" for n in document.urls())  # 9 files, 9 signatures
    assert store.most > 1
    assert out.all_expanded_items[2].url == out.all_segmented_items[2].url and "signature=" in out.segmented_image_url


def test_signing_without_a_key_refreshes_the_token_only_when_it_is_stale(monkeypatch):
    """A Cloud Function's credentials hold no private key: links are signed through IAM with its
    access token, refreshed from the metadata server only when it has expired."""
    from shared.adapters.blobstore import gcs

    class Credentials:
        service_account_email = "fn@p.iam.gserviceaccount.com"
        token, valid, refreshes = "t1", True, 0

        def refresh(self, request) -> None:
            self.refreshes += 1
            self.token, self.valid = f"t{self.refreshes + 1}", True

    class Client:
        _credentials = Credentials()

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    client = Client()
    assert gcs.signing_identity(client)["access_token"] == "t1" and client._credentials.refreshes == 0
    client._credentials.valid = False
    assert gcs.signing_identity(client)["access_token"] == "t2" and client._credentials.refreshes == 1


def test_the_declared_link_lifetime_is_checked_against_a_webhook_delivery():
    """Links are signed per hand-out, so their lifetime need not cover the webhook's retry window
    (hours), which is why they cannot be signed once when the job ends; but it must cover one
    delivery, and a declaration where it does not is refused."""
    import copy

    from shared.topology import declaration, parse

    declared = declaration()
    webhook = declared.function("webhook")
    assert webhook.retry.window_s > declared.links.result_s > webhook.timeout_s + declared.ack_margin_s
    raw = copy.deepcopy(declared.raw)
    raw["links"]["resultSeconds"] = webhook.timeout_s + declared.ack_margin_s
    with pytest.raises(ValueError, match="must outlive one webhook delivery"):
        parse(raw)
