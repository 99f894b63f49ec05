"""Sign, check and store each GPU call's images, in a process beside the one that generates.

After each GPU call its images are encoded, signed with Content Credentials, checked in
one safety call and written once: to `outputs/` when the verdict is `safe`, else to
`quarantine/` (blocked; or unchecked because the check, or the signing, failed). Nothing
is ever in `outputs/` unchecked. This runs while the engine makes the next call.

It runs in a process of its own (`IMAGEGEN_CHECK_PROCESSES`, default 1) because much of
it is Python that holds the interpreter lock (the blob and Content Safety clients, the
C2PA and PNG calls' wrappers, span export): on a thread of the generating process it made
the diffusion thread wait for the lock between its torch ops (docs/performance.md). `0`
runs it on one thread of this process instead.

What a check needs travels with it, pickled: the images' pixels, the variants and the
trace context; a checker process starts its own `Services` from the settings it is given.
The checker shares nothing with the generating process but the blob store, so a checker that dies fails only the calls it held (their activity is
retried) and the next call starts a new one.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from imagegen.checks import provenance
from imagegen.checks.safety import unchecked_verdict
from imagegen.core import blob_names, telemetry
from imagegen.core.settings import Settings
from imagegen.core.types import ContentCredentials, Variant, Verdict
from imagegen.records.messages import CheckedImage, HeldImage
from imagegen.records.metadata import encode_image

if TYPE_CHECKING:
    from imagegen.service.services import Services

log = logging.getLogger(__name__)


@dataclass
class GpuCall:
    """One engine call's images, in the order of its variants, and what made them."""

    job_id: str
    variants: list[Variant]
    images: list[Image.Image]
    seconds: list[float]  # each image's share of the call's wall time
    started: str
    finished: str
    model: str
    revision: str | None
    device: str
    ingredient: provenance.Source | None = None  # the img2img source, for the C2PA manifest
    generated_sizes: list[tuple[int, int] | None] | None = None  # per image: what the model made, if `fit` changed it
    model_name: str | None = None  # the catalog name the job chose (None: the default)
    family: str | None = None  # the model's family and config hash, for the manifest
    config_sha256: str | None = None

    def refs(self) -> list[str]:
        """Every blob a check of this call may write: each image's two possible places."""
        return [ref for variant in self.variants
                for ref in (blob_names.output_ref(self.job_id, variant.id, extension(variant.format)),
                            blob_names.quarantine_ref(self.job_id, variant.id, extension(variant.format)))]


# 1. Where checks run: one checker per process's `Services`, its executor made on first use.

class OutputChecker:
    """Checks GPU calls in a process of its own (or on a thread, `IMAGEGEN_CHECK_PROCESSES=0`)."""

    def __init__(self, services: Services):
        self.services = services
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the checker now, so that it is ready by the time the first GPU call ends."""
        self._checker()

    def submit(self, call: GpuCall) -> Future:
        """Check and store `call`'s images; the future's result is one `CheckedImage` per image."""
        headers = telemetry.carrier()  # the checker's spans and log records join this job's trace
        # A thread checks with this process's services; a checker process with its own.
        services = self.services if self.services.settings.check_processes == 0 else None
        checker = self._checker()
        try:
            return checker.submit(check_and_store, call, headers, services)
        except BrokenProcessPool:  # the checker process died: its calls failed with it; start another
            return self._checker(broken=checker).submit(check_and_store, call, headers, services)

    def _checker(self, broken: Executor | None = None) -> Executor:
        """The executor; a new one when `broken` is the current one (several activities may
        find it broken at once: only the first replaces it)."""
        settings = self.services.settings
        with self._lock:
            if self._executor is not None and self._executor is broken:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            if self._executor is None:
                if settings.check_processes == 0:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imagegen-check")
                else:
                    # spawn, not fork: the generating process runs torch's threads, which a fork
                    # would copy in whatever state they are. spawn imports the host's main module
                    # again, so that must start nothing unless run as `__main__` (as the Functions
                    # worker and devhost do).
                    self._executor = ProcessPoolExecutor(
                        max_workers=settings.check_processes, mp_context=multiprocessing.get_context("spawn"),
                        initializer=_checker_process_started, initargs=(os.getpid(), settings, type(self.services)))
                    self._executor.submit(warm_up)  # load the checks while the first GPU call runs
            return self._executor

    def stop(self) -> None:
        """Stop the checker once the checks it holds are done (a process stops it by itself as it exits)."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None


# A checker process's own services, built as it starts (the same class as its host's: fault
# injection included when the host has it).
_checker_services: Services | None = None


def _checker_process_started(parent_pid: int, settings: Settings, services_class: type[Services]) -> None:
    global _checker_services
    # Ctrl-C in a terminal reaches the whole process group: the host stops its checker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        # A host that is killed (not stopped) cannot stop its checker: it goes by itself.
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="imagegen-check-parent", daemon=True).start()
    telemetry.configure(settings)
    _checker_services = services_class(settings)


def warm_up() -> None:
    """Load the safety checks, the signer and the blob client before the first image."""
    services = _checker_services
    assert services is not None, "warm_up runs in a checker process"
    services.safety.check_images([encode_image(Image.new("RGB", (64, 64)), "png", {})])
    services.signer  # noqa: B018 - built now, not at the first image
    services.store  # noqa: B018


# 2. The check of one GPU call: encode and sign, check, write each image once.

def check_and_store(call: GpuCall, headers: dict[str, str], services: Services | None = None) -> list[CheckedImage]:
    """Encode and sign each image, check them in one safety call, and write each once: to
    `outputs/` only if safe. An image whose signing failed is not checked (fail closed).
    `services`: the checking process's own when None (a checker process)."""
    services = services or _checker_services
    assert services is not None, "check_and_store runs in a checker process or with the host's services"
    with telemetry.resumed(headers), telemetry.span("check_images", images=len(call.images)):
        store = services.store
        held_images, stored_bytes = [], []
        generated_sizes = call.generated_sizes or [None] * len(call.images)
        for variant, image, seconds, generated in zip(call.variants, call.images, call.seconds, generated_sizes):
            data = encode_image(image, variant.format, image_parameters(variant, call.model, call.revision))
            data, credentials, signing_error = sign_image(data, call, variant, services)
            ext = extension(variant.format)
            held_images.append(HeldImage(
                variant_id=variant.id, held=blob_names.quarantine_ref(call.job_id, variant.id, ext),
                publish_to=blob_names.output_ref(call.job_id, variant.id, ext),
                sha256=hashlib.sha256(data).hexdigest(),
                width=image.width, height=image.height, seconds=round(seconds, 3),
                generated_width=generated[0] if generated else None, generated_height=generated[1] if generated else None,
                model=call.model, revision=call.revision, device=call.device,
                model_name=call.model_name, family=call.family, config_sha256=call.config_sha256,
                content_credentials=credentials, signing_error=signing_error,
                started_at=call.started, finished_at=call.finished,
            ))
            stored_bytes.append(data)
        signed = [index for index, held in enumerate(held_images) if held.signing_error is None]
        verdicts = dict(zip(signed, check_outputs(call.job_id, [stored_bytes[index] for index in signed], services)))
        checked = []
        for index, (held, data) in enumerate(zip(held_images, stored_bytes)):
            verdict = verdicts.get(index) or Verdict(status="unchecked", provider="none",
                                                     reasons=[held.signing_error or "not signed"])
            ref = held.publish_to if verdict.status == "safe" else held.held
            store.put(ref, data)
            checked.append(CheckedImage(image=held, verdict=verdict, ref=ref))
        log.info("checked %d images of job %s: %d safe", len(checked), call.job_id,
                 sum(c.verdict.status == "safe" for c in checked))
        return checked


def check_outputs(job_id: str, images: list[bytes], services: Services) -> list[Verdict]:
    """A verdict per image, all checked in one provider call. Fail closed: when the call
    raises, every image is `unchecked` (held back)."""
    provider = services.safety
    try:
        with telemetry.span("safety.check_images", provider=provider.name, images=len(images)):
            return provider.check_images(images) if images else []
    except Exception as error:  # noqa: BLE001 - fail closed, whatever broke
        log.exception("output check of job %s failed", job_id)
        return [unchecked_verdict(provider.name, f"the safety check failed ({type(error).__name__})") for _ in images]


def sign_image(data: bytes, call: GpuCall, variant: Variant,
               services: Services) -> tuple[bytes, ContentCredentials | None, str | None]:
    """The image as it is held: signed with C2PA Content Credentials by the configured signer.

    Returns (bytes, credentials, None), or (the unsigned bytes, None, reason) when signing
    fails: that image is held in quarantine and never published (fail closed). With
    `C2PA_SIGNER=off` the bytes come back unsigned, with neither.
    """
    try:
        with telemetry.span("c2pa_sign", variant_id=variant.id, signer=services.settings.c2pa_signer):
            signed = services.sign(data, call.job_id, variant, call.model, call.revision, call.ingredient)
    except provenance.SigningFailed as failure:
        log.warning("image %s of job %s is held unsigned: %s", variant.id, call.job_id, failure.reason)
        return data, None, f"C2PA signing failed: {failure.reason}"
    if signed is None:
        return data, None, None
    return signed.data, ContentCredentials(manifest_label=signed.manifest_label, signer=signed.signer), None


def image_parameters(variant: Variant, model: str, revision: str | None) -> dict:
    """The parameters embedded in each image, enough to make it again (`model`: its source)."""
    parameters = {
        "prompt": variant.prompt, "negative": variant.negative, "steps": variant.steps,
        "scheduler": variant.scheduler, "guidance": variant.guidance, "seed": variant.seed,
        "width": variant.width, "height": variant.height, "strength": variant.strength,
        "source_image": variant.image, "deepcache": variant.deepcache, "tiny_vae": variant.tiny_vae,
        "model": model, "model_revision": revision, "variant_id": variant.id,
        **({"adapters": [use.model_dump() for use in variant.adapters]} if variant.adapters else {}),
    }
    if variant.mask is not None:  # inpainted; images made before masks keep their parameters
        parameters["mask"] = variant.mask
    return parameters


def extension(fmt: str) -> str:
    return {"jpeg": "jpg"}.get(fmt, fmt)
