"""What the app receives: the result document and progress events.

Field names follow the app backend's existing consumer (clothId, removedBgImageUrl, ...), so it
changes little; additions are errorCode, timings, providers, cacheHit and pipelineVersion.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Callable, Literal

from pydantic import ConfigDict, Field

from shared import PIPELINE_VERSION
from shared.messages import Category, Frozen, ImageType

RESULT_SCHEMA_VERSION = 1


class Document(Frozen):
    """A model of the contract (contract/): field docstrings become the schema's descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class SegmentedItem(Document):
    """One garment of the photo, largest first."""

    label: str
    """The classifier's label (T-Shirt, Pants, Shoes, Hat, ...); SegFormer's own with segformer-http."""
    category: Category | None = None
    """The app's category; the user's pick for the first item when they made one."""
    confidence: float | None = Field(None, ge=0, le=1)
    """The model's probability of the category; null with segformer-http."""
    area_pixels: int = Field(ge=0)
    """Opaque pixels of the garment in the working image."""
    bbox: tuple[int, int, int, int]
    """left, top, right, bottom in the working image."""
    url: str
    """The RGBA crop (a link or a file name: see the result document)."""
    thumbnail_url: str
    """A WebP thumbnail of the crop, 256 px on its longer side."""


class ExpandedItem(Document):
    """One garment's product shot, or the crop and why none was made."""

    label: str
    url: str
    expanded: bool
    """False: `url` is the un-expanded crop, and `note` says why."""
    note: str


class ResultDocument(Document):
    """How a job ended: published on the results topic, POSTed to the webhook, stored as result.json.

    The image fields (`...Url`, items' `url` and `thumbnailUrl`) are links only where the result is
    handed out: the webhook's body and the status answer, signed for that delivery or answer. On the
    results topic and in result.json they name the job's files, relative to its results folder
    (`cutout.png`, `items/0.png`): a link published once would expire while Pub/Sub still retries."""

    schema_version: int = Field(RESULT_SCHEMA_VERSION, json_schema_extra={"const": RESULT_SCHEMA_VERSION})
    """Raised only by a change an existing consumer could misread (README, "For the backend")."""
    job_id: str
    cloth_id: str
    user_id: str
    success: bool
    error_code: str | None = None
    """Stable, null on success: EMPTY_FILE, FILE_TOO_LARGE, UNSUPPORTED_FORMAT, CORRUPT_IMAGE, IMAGE_TOO_LARGE,
    IMAGE_TOO_SMALL, NO_GARMENT_FOUND, INVALID_OBJECT_PATH, INVALID_MESSAGE, MODEL_UNAVAILABLE, UPLOAD_NOT_FOUND,
    OBJECT_NOT_FOUND, RETRIES_EXHAUSTED, INTERNAL_ERROR; treat a code you do not know as a failure."""
    error_message: str | None = None
    """For people."""
    image_type: ImageType | None = None
    """The path segmentation took: the upload's, or decided from the photo; null with segformer-http."""
    suggested_category: Category | None = None
    """The user's pick, else the largest item's category."""
    segmentation_label: str | None = None
    """The largest item's label."""
    area_pixels: int | None = None
    """The largest item's area."""
    removed_bg_image_url: str | None = None
    """The whole photo, upright, background transparent."""
    segmented_image_url: str | None = None
    """The largest item's crop."""
    inpainted_image_url: str | None = None
    """The largest item's product shot, when one was generated."""
    all_segmented_items: list[SegmentedItem] = []
    all_expanded_items: list[ExpandedItem] = []
    timings: dict[str, int] = {}
    """Milliseconds per stage."""
    providers: dict[str, str] = {}
    """Who served each stage."""
    cache_hit: bool = False
    pipeline_version: str = PIPELINE_VERSION
    upload_generation: int | None = None
    """Which version of the upload this result is for, so the app can order results of overwrites."""
    uploaded_at: datetime | None = None
    finished_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def with_urls(self, rewrite: Callable[[str], str]) -> "ResultDocument":
        """The same document with every image URL passed through `rewrite`."""

        def one(url: str | None) -> str | None:
            return None if url is None else rewrite(url)

        return self.model_copy(update={
            "removed_bg_image_url": one(self.removed_bg_image_url),
            "segmented_image_url": one(self.segmented_image_url),
            "inpainted_image_url": one(self.inpainted_image_url),
            "all_segmented_items": [
                i.model_copy(update={"url": one(i.url), "thumbnail_url": one(i.thumbnail_url)}) for i in self.all_segmented_items
            ],
            "all_expanded_items": [i.model_copy(update={"url": one(i.url)}) for i in self.all_expanded_items],
        })

    def with_pick(self, category: Category | None) -> "ResultDocument":
        """The user's category pick wins over the model's, for the garment they photographed (the
        largest, first item) and for the suggestion. Applied when a result is handed to its job."""
        if category is None:
            return self
        items = list(self.all_segmented_items)
        if items:
            items[0] = items[0].model_copy(update={"category": category})
        return self.model_copy(update={"suggested_category": category, "all_segmented_items": items})

    def urls(self) -> list[str]:
        singles = [self.removed_bg_image_url, self.segmented_image_url, self.inpainted_image_url]
        items = [u for i in self.all_segmented_items for u in (i.url, i.thumbnail_url)]
        return sorted({u for u in singles + items + [i.url for i in self.all_expanded_items] if u})

    def to_json(self) -> bytes:
        # Failed documents keep their null fields: the app's consumer reads them by name.
        return self.model_dump_json(indent=2).encode()


class ProgressStep(str, Enum):
    REMOVING_BACKGROUND = "REMOVING_BACKGROUND"
    BACKGROUND_REMOVED = "BACKGROUND_REMOVED"
    ANALYZING = "ANALYZING"
    ANALYZED = "ANALYZED"
    EXPANDING = "EXPANDING"
    EXPANDED = "EXPANDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


# The app's progress bar, as its current worker reports it.
STEP_PERCENT = {
    ProgressStep.REMOVING_BACKGROUND: 10,
    ProgressStep.BACKGROUND_REMOVED: 25,
    ProgressStep.ANALYZING: 30,
    ProgressStep.ANALYZED: 50,
    ProgressStep.EXPANDED: 70,
    ProgressStep.COMPLETED: 95,
}


class ProgressEvent(Document):
    """How far a job is, published on the progress topic at the app's percentages."""

    schema_version: int = Field(RESULT_SCHEMA_VERSION, json_schema_extra={"const": RESULT_SCHEMA_VERSION})
    job_id: str
    cloth_id: str
    user_id: str
    status: Literal["PROCESSING", "COMPLETED", "FAILED"]
    current_step: ProgressStep
    progress_percentage: int = Field(ge=0, le=100)
    sequence: int = Field(0, ge=0)
    """Grows along a job's path (events can arrive out of order): a consumer ignores an event whose
    sequence is not above the last one it applied."""
    timestamp: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
