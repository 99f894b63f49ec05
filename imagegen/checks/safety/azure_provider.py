"""The `azure` provider: Azure AI Content Safety through `azure-ai-contentsafety` 1.0.0.

Texts and images are analyzed for the four harm categories (Hate, SelfHarm, Sexual,
Violence) at four severity levels (0, 2, 4, 6); texts are also matched against the
blocklists named in `CONTENT_SAFETY_BLOCKLISTS`.

The service's limits are met here, not left to fail: texts longer than 10,000 characters
are split (the verdict combines the pieces: highest severity per category, every hit),
and images are downscaled to 2048 px, upscaled to 50 px and re-encoded under 4 MB.

Retries are ours, not the SDK's: 429 and 5xx answers and connection errors are retried
with exponential backoff, a Retry-After header is honoured, and the whole check of one
item is bounded by `Retry.total_seconds`, so a stuck service costs a known time. When
that runs out, or the service rejects our credentials or the request, the verdict is
`unchecked` with the reason; nothing here raises for a service failure.
"""

from __future__ import annotations

import email.utils
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from azure.ai.contentsafety import ContentSafetyClient
from azure.ai.contentsafety.models import AnalyzeImageOptions, AnalyzeTextOptions, ImageData
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from PIL import Image

from imagegen.checks.safety.verdicts import (
    UnreadableImage,
    read_image,
    require_image_bytes,
    require_texts,
    resolve_thresholds,
    unchecked_verdict,
    verdict_from_severities,
)
from imagegen.core.settings import Settings
from imagegen.core.types import CATEGORIES, Verdict

NAME = "azure"
MAX_TEXT_CHARS = 10_000
# The service says 4 MB; we stay under 4,000,000 bytes so either reading of "MB" holds.
MAX_IMAGE_BYTES = 4_000_000
MAX_IMAGE_SIDE = 2048
MIN_IMAGE_SIDE = 50
SERVICE_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retry:
    """How hard one item's check tries before it is given up as `unchecked`."""

    attempts: int = 5  # calls per request, the first included
    backoff_seconds: float = 0.5  # wait before the 2nd call; doubles for each one after
    max_wait_seconds: float = 10.0  # longest backoff between two calls
    total_seconds: float = 60.0  # the whole item, waits included; a longer Retry-After gives up
    request_timeout_seconds: float = 20.0  # connect and read timeout of one call


class _Failed(Exception):
    """A request that will not succeed: its message becomes the `unchecked` reason."""


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at whitespace where one is near.

    Cutting inside a word could hide a blocklisted term from both pieces, so a cut moves
    back to the last whitespace in the piece's final 10% when there is one.
    """
    pieces = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        window = text[end - limit // 10 : end]
        spaces = [i for i, char in enumerate(window) if char.isspace()]
        cut = end - len(window) + spaces[-1] + 1 if spaces else end
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def prepare_image(data: bytes) -> bytes:
    """`data` as the service accepts it: 50-2048 px a side, under 4 MB, a format it reads.

    Returns `data` unchanged when it already fits. Raises `UnreadableImage` when the bytes
    do not decode.
    """
    image = read_image(data)
    original_format = image.format
    width, height = image.size
    scale = 1.0
    if max(width, height) > MAX_IMAGE_SIDE:
        scale = MAX_IMAGE_SIDE / max(width, height)
    elif min(width, height) < MIN_IMAGE_SIDE:
        scale = MIN_IMAGE_SIDE / min(width, height)
    if scale == 1.0 and original_format in SERVICE_FORMATS and len(data) <= MAX_IMAGE_BYTES:
        return data
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    encoded = _encode_under_limit(image)
    log.info(
        "image re-encoded for Content Safety: %dx%d %s of %d bytes -> %dx%d of %d bytes",
        width, height, original_format or "image", len(data), *image.size, len(encoded),
    )
    return encoded


def _encode_under_limit(image: Image.Image) -> bytes:
    # PNG first: lossless, so the service sees what we would publish. Photographs and
    # noise at 2048 px can pass 4 MB as PNG; JPEG at falling quality always fits.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    if buffer.tell() <= MAX_IMAGE_BYTES:
        return buffer.getvalue()
    rgb = image.convert("RGB")
    for quality in (90, 75, 60, 40):
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= MAX_IMAGE_BYTES:
            return buffer.getvalue()
    raise UnreadableImage(f"image could not be re-encoded under {MAX_IMAGE_BYTES} bytes for Content Safety")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a 429/503 answer asks for: `retry-after-ms`, else `Retry-After` (seconds or a date)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, unit in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * unit)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return None


def _describe(error: HttpResponseError) -> str:
    code = getattr(getattr(error, "error", None), "code", None)
    message = getattr(getattr(error, "error", None), "message", None) or error.reason or ""
    return f"{error.status_code}{' ' + code if code else ''}{': ' + message if message else ''}"


@dataclass
class AzureProvider:
    client: ContentSafetyClient
    thresholds: Mapping[str, int]
    blocklists: Sequence[str] = ()
    retry: Retry = field(default_factory=Retry)
    workers: int = 8  # texts checked at once; the service allows ~100 requests a second on S0
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder
    name: str = NAME

    @classmethod
    def connect(
        cls,
        endpoint: str,
        key: str | None = None,
        *,
        thresholds: Mapping[str, int] | None = None,
        blocklists: Sequence[str] = (),
        retry: Retry | None = None,
        **options: Any,
    ) -> "AzureProvider":
        """A provider for `endpoint`, with `key` or else Entra ID (managed identity in Azure).

        Without a key, `DefaultAzureCredential` finds the identity; it reads
        `AZURE_CLIENT_ID` itself to pick a user-assigned managed identity.
        """
        if key:
            credential: Any = AzureKeyCredential(key)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        retry = retry or Retry()
        client = ContentSafetyClient(
            endpoint,
            credential,
            retry_policy=RetryPolicy.no_retries(),  # our loop below retries, bounded in time
            connection_timeout=retry.request_timeout_seconds,
            read_timeout=retry.request_timeout_seconds,
        )
        return cls(
            client=client,
            thresholds=thresholds or resolve_thresholds(),
            blocklists=tuple(blocklists),
            retry=retry,
            **options,
        )

    @classmethod
    def from_settings(cls, settings: Settings, thresholds: Mapping[str, int] | None = None) -> "AzureProvider":
        return cls.connect(
            settings.content_safety_endpoint or "",
            settings.content_safety_key,
            thresholds=thresholds or resolve_thresholds(settings.safety_thresholds),
            blocklists=settings.content_safety_blocklists,
        )

    # -- texts --------------------------------------------------------------------------

    def check_texts(self, texts: list[str]) -> list[Verdict]:
        require_texts(texts)
        distinct = list(dict.fromkeys(texts))  # a job repeats prompts across variants
        if not distinct:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(distinct)))) as pool:
            verdicts = dict(zip(distinct, pool.map(self._check_text, distinct)))
        return [verdicts[text].model_copy(deep=True) for text in texts]

    def _check_text(self, text: str) -> Verdict:
        pieces = [piece for piece in split_text(text) if piece.strip()]
        severities: dict[str, int] = {}
        hits: list[str] = []
        for number, piece in enumerate(pieces, start=1):
            options = AnalyzeTextOptions(
                text=piece,
                categories=list(CATEGORIES),
                blocklist_names=list(self.blocklists) or None,
                # A hit blocks the text anyway; halting spares the category analysis.
                halt_on_blocklist_hit=True if self.blocklists else None,
                output_type="FourSeverityLevels",
            )
            try:
                result = self._call(self.client.analyze_text, options)
            except _Failed as failure:
                where = f" (part {number} of {len(pieces)})" if len(pieces) > 1 else ""
                return unchecked_verdict(self.name, f"{failure}{where}")
            for analysis in result.categories_analysis or []:
                severities[analysis.category] = max(severities.get(analysis.category, 0), analysis.severity or 0)
            hits.extend(
                f"{match.blocklist_name}:{match.blocklist_item_text}" for match in result.blocklists_match or []
            )
        return verdict_from_severities(self.name, severities, self.thresholds, hits)

    # -- images -------------------------------------------------------------------------

    def check_image(self, data: bytes) -> Verdict:
        require_image_bytes(data)
        try:
            content = prepare_image(bytes(data))
        except UnreadableImage as error:
            return unchecked_verdict(self.name, str(error))
        options = AnalyzeImageOptions(
            image=ImageData(content=content), categories=list(CATEGORIES), output_type="FourSeverityLevels"
        )
        try:
            result = self._call(self.client.analyze_image, options)
        except _Failed as failure:
            return unchecked_verdict(self.name, str(failure))
        severities = {analysis.category: analysis.severity or 0 for analysis in result.categories_analysis or []}
        return verdict_from_severities(self.name, severities, self.thresholds)

    def check_images(self, images: list[bytes]) -> list[Verdict]:
        """One verdict per image, in order: the service takes one image per request, so
        they go `workers` at a time."""
        if len(images) <= 1:
            return [self.check_image(data) for data in images]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(images)))) as pool:
            return list(pool.map(self.check_image, images))

    # -- one request, retried -----------------------------------------------------------

    def _call(self, operation: Callable[[Any], Any], options: Any) -> Any:
        """`operation(options)`, retried on 429, 5xx and connection errors; raises `_Failed`."""
        retry = self.retry
        started = time.monotonic()
        last = ""
        for attempt in range(1, retry.attempts + 1):
            try:
                return operation(options)
            except ClientAuthenticationError as error:
                if error.status_code is None:  # no answer: getting a token failed
                    raise _Failed(
                        "could not get an Entra ID token for Content Safety "
                        f"({error.__class__.__name__}): set CONTENT_SAFETY_KEY, or give the app's "
                        "managed identity (AZURE_CLIENT_ID for a user-assigned one) the role "
                        "Cognitive Services User"
                    ) from None
                raise _Failed(self._credentials_reason(error.status_code)) from None
            except HttpResponseError as error:
                if error.status_code in (401, 403):
                    raise _Failed(self._credentials_reason(error.status_code)) from None
                if error.status_code != 429 and (error.status_code or 0) < 500:
                    raise _Failed(f"Content Safety refused the request ({_describe(error)})") from None
                last = _describe(error)
                # azure-core types `response` as a protocol without `headers`; every transport's response has them.
                asked = retry_after_seconds(error.response.headers) if error.response is not None else None  # type: ignore[attr-defined]
            except (ServiceRequestError, ServiceResponseError) as error:
                last = f"could not reach the service ({error.__class__.__name__}: {error.message})"
                asked = None
            except Exception as error:  # noqa: BLE001 - fail closed on anything unforeseen
                raise _Failed(f"Content Safety check failed ({error.__class__.__name__}: {error})") from None
            if attempt == retry.attempts:
                break
            backoff = min(retry.backoff_seconds * 2 ** (attempt - 1), retry.max_wait_seconds)
            wait = asked if asked is not None else backoff
            left = retry.total_seconds - (time.monotonic() - started)
            if wait > left:
                raise _Failed(
                    f"Content Safety kept failing ({last}); the next try would wait {wait:.1f} s, "
                    f"past the {retry.total_seconds:g} s allowed for one check"
                )
            log.warning("Content Safety answered %s; try %d of %d in %.2f s", last, attempt + 1, retry.attempts, wait)
            self.sleep(wait)
        elapsed = time.monotonic() - started
        raise _Failed(f"Content Safety kept failing after {retry.attempts} tries in {elapsed:.1f} s (last: {last})")

    @staticmethod
    def _credentials_reason(status: int) -> str:
        return (
            f"Content Safety rejected our credentials ({status}): check CONTENT_SAFETY_KEY or the "
            "managed identity's role (Cognitive Services User)"
        )
