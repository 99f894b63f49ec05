"""Shared by the imagegen tests: a job with every axis, a minimal job, images, errors, a store over Azurite."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from imagegen.core.types import JobValidationError
from imagegen.jobs.spec import parse_job
from imagegen.storage.blobs import BlobStore

CAMPAIGN_YAML = """\
name: spring-campaign
prompts:
  - text: "a running shoe on wet sand at sunset, product photo"
    negative: "blurry, text, watermark"
  - text: "the same shoe, studio lighting"
    image: sneaker.png        # img2img source: a blob name, never a URL
    strength: 0.6
variants:
  seeds: 4
  styles: ["", "watercolor illustration"]
  sizes: ["512x512", "768x512"]
  guidance: [7.0]
  steps: 25
  scheduler: dpmpp
output: {format: png}
"""


def job(**variants) -> dict:
    return {"name": "t", "prompts": [{"text": "a cat"}], "variants": variants}


def errors_of(data, **kwargs) -> dict[str, tuple[str, str]]:
    """path -> (rule, message) for every error parse_job reports."""
    with pytest.raises(JobValidationError) as caught:
        parse_job(data, **kwargs)
    return {error.path: (error.rule, error.message) for error in caught.value.errors}


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def store(storage_connection_string) -> BlobStore:
    store = BlobStore.from_connection_string(storage_connection_string)
    store.ensure_containers()
    return store


@pytest.fixture
def job_id() -> str:
    # A fresh job per test: tests share one Azurite and must not see each other's blobs.
    return f"job-{uuid.uuid4().hex[:12]}"
