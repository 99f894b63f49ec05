"""Scripted activities: each answers as the real one would, in today's message shapes.

`activities(**overrides)` is the set a job is played with (driver.play); each factory
below makes one activity, told what to do differently (a prompt to block, a batch that
fails every try, a webhook that fails). Nothing is stored and no model runs: results are
made from the request, and `write_manifest` computes the job's status with the real
manifest model, so a request the real activity would refuse fails the test.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterable

from imagegen.core.blob_names import published_ref, split_ref
from imagegen.core.types import Verdict
from imagegen.records.messages import (
    BatchRequest,
    CheckedImage,
    GenerateImagesResult,
    HeldImage,
    ModerateImageRequest,
    ModerateImageResult,
    ModerateTextRequest,
    ModerateTextResult,
    NotifyJobRequest,
    NotifyJobResult,
    PublishImagesRequest,
    PublishImagesResult,
    WriteManifestRequest,
    WriteManifestResult,
    manifest_for,
)
from imagegen.records.notifications import NotifyRecord
from tests.orchestrations.driver import Activity, ActivityFailed

SENT_AT = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)  # the webhook's clock (not the orchestrator's)


def moderate_text(blocked: Iterable[str] = (), reason: str = "blocklist: golden") -> Activity:
    """Every text safe but those in `blocked`."""
    blocked = set(blocked)

    def answer(payload: dict) -> ModerateTextResult:
        texts = ModerateTextRequest.model_validate(payload).texts
        return ModerateTextResult(verdicts=[
            Verdict(status="blocked", provider="local", reasons=[reason]) if text in blocked
            else Verdict(status="safe", provider="local") for text in texts])
    return answer


def moderate_image(blocked: Iterable[str] = (), reason: str = "nsfw: 0.97") -> Activity:
    """Every source image safe but those (blob names) in `blocked`."""
    blocked = set(blocked)

    def answer(payload: dict) -> ModerateImageResult:
        check = ModerateImageRequest.model_validate(payload)
        verdict = (Verdict(status="blocked", provider="local", reasons=[reason]) if check.image in blocked
                   else Verdict(status="safe", provider="local"))
        return ModerateImageResult(verdict=verdict, image=check.image)
    return answer


def generate_images(failing: Iterable[str] = (), made: int | None = None, blocked: Iterable[str] = (),
                    warnings: Iterable[str] = (), reason: str = "CUDA out of memory") -> Activity:
    """Makes every variant of the batch, checked safe and stored in outputs/; a batch whose id is in
    `failing` fails every try with `reason`; `made`: only the first so many of each batch (a
    cancelled job: the GPU stops at the cancel marker); variants in `blocked` (ids) are checked
    blocked and held in quarantine/."""
    failing, blocked, warnings = set(failing), set(blocked), list(warnings)

    def answer(payload: dict) -> GenerateImagesResult:
        batch = BatchRequest.model_validate(payload)
        if batch.batch.id in failing:
            raise ActivityFailed(reason)
        images = []
        for v in batch.batch.variants[:made]:
            image = HeldImage(variant_id=v.id, held=f"quarantine/{batch.job_id}/{v.id}.png",
                              publish_to=f"outputs/{batch.job_id}/{v.id}.png", sha256="0" * 64, width=v.width,
                              height=v.height, seconds=0.5, model="tiny", device="cpu")
            if v.id in blocked:
                images.append(CheckedImage(image=image, verdict=Verdict(status="blocked", provider="local",
                                                                        reasons=["nsfw: 0.99"]), ref=image.held))
            else:
                images.append(CheckedImage(image=image, verdict=Verdict(status="safe", provider="local"),
                                           ref=image.publish_to))
        return GenerateImagesResult(images=images, warnings=warnings)
    return answer


def write_manifest() -> Activity:
    """Builds the manifest the real activity would upload (the real model checks it) and
    answers with its status; nothing is uploaded."""

    def answer(payload: dict) -> WriteManifestResult:
        request = WriteManifestRequest.model_validate(payload)
        manifest = manifest_for(request, lambda ref: f"http://blob/{ref}")
        return WriteManifestResult(manifest=f"manifests/{request.job_id}.json", url="http://blob/m.json",
                                   status=manifest.status, gpu_seconds=manifest.totals.seconds,
                                   estimated_cost=manifest.totals.estimated_cost)
    return answer


def publish_images(failing: str | None = None) -> Activity:
    """Copies each approved image to published/ (fails every try with `failing`, if given)."""

    def answer(payload: dict) -> PublishImagesResult:
        request = PublishImagesRequest.model_validate(payload)
        if failing:
            raise ActivityFailed(failing)
        return PublishImagesResult(published={
            variant_id: published_ref(request.job_id, variant_id, split_ref(ref)[1].rsplit(".", 1)[-1])
            for variant_id, ref in request.images.items()})
    return answer


def notify_job(status: str = "sent", error: str | None = None) -> Activity:
    """The webhook call: `sent`, or `failed` with `error` as the real activity records a webhook
    that never answered (it does not raise for a webhook's sake)."""

    def answer(payload: dict) -> NotifyJobResult:
        request = NotifyJobRequest.model_validate(payload)
        return NotifyJobResult(record=NotifyRecord(
            event=request.event, host="hooks.example.com", status=status, attempts=1 if status == "sent" else 3,
            http_status=200 if status == "sent" else None, error=error, at=SENT_AT))
    return answer


def activities(**overrides: Activity) -> dict[str, Callable[[dict], object]]:
    """Every activity the orchestrators call, answering as a job that goes well; `overrides` by name."""
    answers = {"moderate_text": moderate_text(), "moderate_image": moderate_image(),
               "generate_images": generate_images(), "write_manifest": write_manifest(),
               "publish_images": publish_images(), "notify_job": notify_job()}
    unknown = set(overrides) - set(answers)
    assert not unknown, f"no such activity: {unknown}"
    return {**answers, **overrides}
