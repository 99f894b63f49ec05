"""What a job and its inputs may be: the configurable `Limits`, and `check_source_image`.

Every limit is checked before anything runs (`imagegen.spec.parse_job` for the job file,
`check_source_image` for an img2img source), so a job that would take the GPU for an hour
or a 50,000-pixel image is turned away with a message instead of an out-of-memory crash.
"""

from __future__ import annotations

import io
import warnings

from pydantic import BaseModel, ConfigDict, Field

from imagegen.settings import Settings
from imagegen.types import FieldError, JobValidationError

# Formats PIL may decode for us. PIL can open dozens more (EPS even shells out to
# Ghostscript); a source image is untrusted input, so only the three web formats get in.
SOURCE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")


class Limits(BaseModel):
    """The most a job may ask for. Defaults match `imagegen.settings.SETTINGS`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_variants: int = Field(64, ge=1, description="Most variants one job may expand to")
    max_prompts: int = Field(32, ge=1, description="Most entries in `prompts`")
    max_styles: int = Field(16, ge=1, description="Most entries in `variants.styles`")
    max_prompt_chars: int = Field(2000, ge=1, description="Longest prompt, negative prompt or style")
    min_steps: int = Field(1, ge=1, description="Fewest denoising steps")
    max_steps: int = Field(150, ge=1, description="Most denoising steps")
    min_side: int = Field(64, ge=8, description="Smallest width or height in pixels")
    max_side: int = Field(2048, ge=8, description="Largest width or height in pixels")
    min_guidance: float = Field(0.0, ge=0.0, description="Lowest guidance scale")
    max_guidance: float = Field(30.0, ge=0.0, description="Highest guidance scale")
    max_job_bytes: int = Field(1_000_000, ge=1, description="Largest job file in bytes")
    max_source_bytes: int = Field(10_000_000, ge=1, description="Largest img2img source in bytes")
    max_source_side: int = Field(4096, ge=1, description="Largest img2img source side in pixels")

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """The limits the app runs with: the `IMAGEGEN_MAX_*` settings over the defaults."""
        return cls(
            max_variants=settings.max_variants,
            max_steps=settings.max_steps,
            max_side=settings.max_side,
            max_source_bytes=settings.max_source_bytes,
            max_source_side=settings.max_source_side,
        )


DEFAULT_LIMITS = Limits()


def _reject(path: str, rule: str, message: str) -> JobValidationError:
    return JobValidationError([FieldError(path=path, rule=rule, message=message)])


def check_source_image(data: bytes, limits: Limits | None = None, *, path: str = "image"):
    """Decode an img2img source image safely and return it as an RGB `PIL.Image.Image`.

    Raises `JobValidationError` naming `path` (e.g. `prompts[1].image`) when the bytes are
    too many, are not a PNG/JPEG/WebP image, or the image is larger than
    `limits.max_source_side` on a side. The size in the header is checked before the pixels
    are decoded, so a small file that claims to be 100,000 px wide costs nothing.
    """
    from PIL import Image, ImageOps  # imported here: orchestrations import this package too

    limits = limits or DEFAULT_LIMITS
    if len(data) > limits.max_source_bytes:
        raise _reject(
            path, "max_source_bytes",
            f"`{path}` is {len(data):,} bytes; the limit is {limits.max_source_bytes:,} bytes",
        )
    if not data:
        raise _reject(path, "not_an_image", f"`{path}` is empty; expected a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            # PIL warns (rather than raises) between its two bomb thresholds; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as probe:
                width, height = probe.size  # from the header only: nothing decoded yet
                if max(width, height) > limits.max_source_side:
                    raise _reject(
                        path, "max_source_side",
                        f"`{path}` is {width}x{height} px; the limit is {limits.max_source_side} px per side",
                    )
                probe.verify()  # checks the file's structure and checksums without decoding
            # verify() leaves the image unusable, so open again to decode the pixels.
            with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
                return upright.convert("RGB")
    except JobValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _reject(
            path, "max_source_side",
            f"`{path}` declares too many pixels to decode; the limit is {limits.max_source_side} px per side",
        ) from None
    except Image.UnidentifiedImageError:
        raise _reject(
            path, "not_an_image",
            f"`{path}` is not a PNG, JPEG or WebP image ({len(data):,} bytes of something else)",
        ) from None
    except Exception as error:  # PIL raises many types for bad input (OSError, SyntaxError, ...)
        reason = str(error) or type(error).__name__
        raise _reject(
            path, "not_an_image",
            f"`{path}` could not be read as a PNG, JPEG or WebP image ({len(data):,} bytes): {reason}",
        ) from None
