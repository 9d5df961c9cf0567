"""What the app receives: the result document and progress events.

Field names follow the app backend's existing consumer (clothId, removedBgImageUrl, ...), so it
changes little; additions are errorCode, timings, providers, cacheHit and pipelineVersion.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Callable

from pydantic import Field

from shared import PIPELINE_VERSION
from shared.messages import Category, Frozen, ImageType

RESULT_SCHEMA_VERSION = 1


class SegmentedItem(Frozen):
    label: str
    category: Category | None = None
    confidence: float | None = None  # the model's probability of the category, 0..1
    area_pixels: int
    bbox: tuple[int, int, int, int]
    url: str
    thumbnail_url: str


class ExpandedItem(Frozen):
    label: str
    url: str
    expanded: bool  # False: `url` is the un-expanded crop, and `note` says why
    note: str


class ResultDocument(Frozen):
    schema_version: int = RESULT_SCHEMA_VERSION
    job_id: str
    cloth_id: str
    user_id: str
    success: bool
    error_code: str | None = None
    error_message: str | None = None
    image_type: ImageType | None = None  # the path segmentation took: the upload's, or decided from the photo
    suggested_category: Category | None = None
    segmentation_label: str | None = None
    area_pixels: int | None = None
    removed_bg_image_url: str | None = None
    segmented_image_url: str | None = None
    inpainted_image_url: str | None = None
    all_segmented_items: list[SegmentedItem] = []
    all_expanded_items: list[ExpandedItem] = []
    timings: dict[str, int] = {}
    providers: dict[str, str] = {}
    cache_hit: bool = False
    pipeline_version: str = PIPELINE_VERSION
    # Which version of the upload this result is for, so the app can order results of overwrites.
    upload_generation: int | None = None
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


class ProgressEvent(Frozen):
    schema_version: int = RESULT_SCHEMA_VERSION
    job_id: str
    cloth_id: str
    user_id: str
    status: str  # PROCESSING, COMPLETED or FAILED
    current_step: ProgressStep
    progress_percentage: int = Field(ge=0, le=100)
    # Grows along a job's path (events can arrive out of order): a consumer ignores an event whose
    # sequence is not above the last one it applied.
    sequence: int = Field(0, ge=0)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
