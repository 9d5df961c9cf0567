"""The whole pipeline in one process: the same stages and dispatcher as the cloud, over a local
folder and an in-process bus. Used by `closet-pipeline process` and by the tests."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Callable

from PIL import Image

from closet_pipeline.adapters.inprocess_bus import InProcessBus
from closet_pipeline.adapters.local_folder import LocalFolderBlobStore
from shared.adapters.blobstore import BlobStore
from shared.config import Settings
from shared.documents import ProgressEvent, ResultDocument
from shared.layout import job_id_for, upload_key
from shared.messages import Category, ImageType, Job, JobRequest
from shared.runtime.dispatch import Dispatcher
from shared.runtime.links import signed
from shared.stages.context import StageContext
from shared.stages.images import WorkImages
from shared.topology import load as load_topology


class MemoryWorkImages(WorkImages):
    """Work images kept decoded in memory: one process never encodes what it reads back."""

    def __init__(self) -> None:
        self._images: dict[str, Image.Image] = {}
        self._lock = threading.Lock()

    def put(self, key: str, image: Image.Image) -> None:
        with self._lock:
            self._images.setdefault(key, image)

    def get(self, key: str) -> Image.Image:
        with self._lock:
            return self._images[key]

    def discard_job(self, job_id: str) -> None:
        with self._lock:
            for key in [k for k in self._images if k.startswith(f"work/{job_id}/")]:
                del self._images[key]


def all_stages() -> dict:
    """Every stage module, in topology order: one process runs them all."""
    return {name: importlib.import_module(f"shared.stages.{name}") for name in load_topology().stage_names}


class LocalPipeline:
    def __init__(self, settings: Settings, store: BlobStore | Path, *, workers: int = 4, keep_work: bool = False,
                 webhook: Callable[[bytes], object] | None = None) -> None:
        """`webhook` (e.g. `WebhookSender(...).send`) is called with each result document, from its
        own subscription on the results topic, its links signed for that delivery, as the webhook
        function does in the cloud (shared/runtime/entry/subscriber.py)."""
        self.keep_work = keep_work  # keep intermediates and outcome records after a job (tests)
        self.store = store if isinstance(store, BlobStore) else LocalFolderBlobStore(store)
        self.images = MemoryWorkImages()
        self.ctx = StageContext(settings, self.store, self.images)
        self.topology = load_topology()
        self.bus = InProcessBus(workers=workers, max_attempts=3, dead_letter_topic=self.topology.dead_letter_topic)
        self.dispatcher = Dispatcher(self.ctx, self.bus, all_stages(), topology=self.topology)
        self._results: dict[str, ResultDocument] = {}
        self._listeners: dict[str, Callable[[ProgressEvent], None]] = {}
        self._lock = threading.Lock()
        for name in self.topology.stage_names:
            self.bus.subscribe(self.topology.stage(name).topic, self._handler(name))
        self.bus.subscribe(self.topology.dead_letter_topic, lambda data, attrs, _: self.dispatcher.handle_dead_letter(data, attrs))
        self.bus.subscribe(self.topology.results_topic, self._collect)
        if webhook is not None:
            self.bus.subscribe(self.topology.results_topic, lambda data, attrs, _: webhook(
                signed(ResultDocument.model_validate_json(data), self.store).to_json()))
        self.bus.subscribe(self.topology.progress_topic, self._progress)

    def _handler(self, name: str):
        def handle(data: bytes, attributes: dict[str, str], attempt: int) -> None:
            self.dispatcher.handle(name, data, attempt)

        return handle

    def _collect(self, data: bytes, attributes: dict[str, str], attempt: int) -> None:
        document = ResultDocument.model_validate_json(data)
        with self._lock:
            self._results[document.job_id] = document

    def _progress(self, data: bytes, attributes: dict[str, str], attempt: int) -> None:
        event = ProgressEvent.model_validate_json(data)
        listener = self._listeners.get(event.job_id)
        if listener is not None:
            listener(event)

    def warm_up(self) -> None:
        for name in self.topology.stage_names:
            self.dispatcher.warm_up(name)

    def process_bytes(self, data: bytes, file_name: str, *, user_id: str = "local", cloth_id: str = "cloth",
                      category: Category | None = None, image_type: ImageType | None = None,
                      on_progress: Callable[[ProgressEvent], None] | None = None) -> ResultDocument:
        """Upload the bytes as the app would, run the job to its end and return its result, its links
        signed now, as the app gets it from the status function or the webhook."""
        key = upload_key(user_id, cloth_id, file_name)
        generation = self.store.write(key, data, content_type="application/octet-stream")
        job = Job(job_id=job_id_for(key, generation), cloth_id=cloth_id, user_id=user_id, image_type=image_type,
                  category_hint=category, upload=key, upload_generation=generation, upload_name=file_name)
        if on_progress is not None:
            self._listeners[job.job_id] = on_progress
        self.bus.publish(self.topology.first.topic, JobRequest(job=job).to_json())
        self.bus.run_until_idle()
        self._listeners.pop(job.job_id, None)
        if not self.keep_work:
            self.images.discard_job(job.job_id)
            for work in self.store.list(f"work/{job.job_id}/"):  # what GCS lifecycle does after a day
                self.store.delete(work)
        with self._lock:
            published = self._results[job.job_id]
        return signed(published, self.store)

    def close(self) -> None:
        self.bus.close()
