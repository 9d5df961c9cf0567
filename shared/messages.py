"""Messages between stages: typed, read-only, versioned JSON envelopes of a few hundred bytes.

They carry object keys (`work/{jobId}/...`), never image bytes. Unknown fields, a missing field or
another schema version are refused (InvalidMessage), so a bad message ends its job instead of
corrupting the next stage.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.json_schema import WithJsonSchema

from shared.errors import InvalidMessage
from shared.layout import ID, is_id

SCHEMA_VERSION = 1


def _id(value: str) -> str:
    if not is_id(value):
        raise ValueError("ids are 1-64 letters, digits, '-' and '_'")
    return value


# The contract's schemas carry the same rule as a pattern.
Id = Annotated[str, AfterValidator(_id), WithJsonSchema({"type": "string", "pattern": f"^{ID.pattern}$"})]


class Category(str, Enum):
    TOP = "TOP"
    BOTTOM = "BOTTOM"
    SHOES = "SHOES"
    ACC = "ACC"


class ImageType(str, Enum):
    FULL_BODY = "FULL_BODY"
    SINGLE_ITEM = "SINGLE_ITEM"


class Frozen(BaseModel):
    """Read-only, camelCase on the wire, strict about unknown fields."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Job(Frozen):
    """Who and what a job is about; travels unchanged through every stage."""

    job_id: Id
    cloth_id: Id
    user_id: Id
    image_type: ImageType | None = None  # None: not said; the segment stage decides
    category_hint: Category | None = None
    upload: str  # object key of the original upload
    upload_generation: int | None = None  # the exact version the notification named (None: the current one)
    uploaded_at: datetime | None = None  # when that version was written (the notification's eventTime)
    upload_name: str = ""  # the original file name, for people


class StageMessage(Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    job: Job
    attempt: int = Field(1, ge=1)
    timings: dict[str, int] = {}  # milliseconds per stage so far
    providers: dict[str, str] = {}  # which provider served each stage so far


class JobRequest(StageMessage):
    """To ingest: a new upload."""


class IngestDone(StageMessage):
    """To remove_background: the normalised working image."""

    working_image: str
    cache_key: str
    width: int
    height: int


class CutoutDone(StageMessage):
    """To segment: the whole working image with a transparent background."""

    cutout: str
    cache_key: str


class GarmentFound(StageMessage):
    """To expand: one garment of the photo (one message per garment)."""

    cache_key: str
    cutout: str
    item_index: int = Field(ge=0)
    item_count: int = Field(ge=1)
    crop: str
    label: str
    category: Category | None = None
    confidence: float | None = Field(None, ge=0, le=1)  # the segmenter's probability of the category
    image_type: ImageType | None = None  # the path the segmenter used; None: it treats every photo alike
    area_pixels: int = Field(ge=0)
    bbox: tuple[int, int, int, int]  # left, top, right, bottom in the working image
    touches_border: bool


class GarmentDone(GarmentFound):
    """To deliver: one garment, expanded or with the reason it was not."""

    expanded: str | None = None
    expand_note: str
    degraded: bool = False  # generation was tried and did not happen (the provider failed, no time left)


M = TypeVar("M", bound=StageMessage)


def decode(model: type[M], data: bytes | str) -> M:
    """Parse a message, turning any schema problem into a permanent InvalidMessage."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidMessage(f"Malformed {model.__name__}: {where}: {first['msg']}") from exc
