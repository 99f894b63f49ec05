"""Fault injection for the end-to-end tests and for rehearsing incidents. Unset in production.

`IMAGEGEN_FAULTS` holds `pattern=mode` pairs; a job whose id matches the pattern:

- `fail-once`: its GPU work fails on the first attempt of each batch;
- `fail-always`: its GPU work fails on every attempt;
- `fail-check-once`: its first output check fails (the job's other checks run);
- `fail-sign`: signing each of its images fails, as when Key Vault is down;
- `fail-drop` (the pattern matches a file's name in `prompts/`, not a job id): reading the
  dropped file to start its job fails every time, so the blob trigger gives up on it and
  the file goes the poison queue's way.

Faults wrap the collaborators (the engine, the signer, the output checker, the blob store),
never the code that uses them: `services.start` builds
`FaultyServices` instead of `Services` when the setting is there, and nothing else in the
product imports this module. The job an engine call works for is the one its activity
runs for (`telemetry.current_job_id`, set for every activity). What has failed once is
remembered per `FaultyServices`, that is per process: the host's, which decides for the
output checks too before handing them to a checker process.
"""

from __future__ import annotations

import fnmatch
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from imagegen.checks.safety import unchecked_verdict
from imagegen.core import telemetry
from imagegen.core.types import Batch, SigningFailed, Variant
from imagegen.records.messages import CheckedImage
from imagegen.service.services import Services

if TYPE_CHECKING:
    from imagegen.checks.provenance import Signed, Source
    from imagegen.generation.engine import DiffusionEngine
    from imagegen.service.output_checks import GpuCall, OutputChecker
    from imagegen.storage.blobs import BlobStore


class FaultyServices(Services):
    """`Services` whose engine, signer and output checker fail as `IMAGEGEN_FAULTS` says."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._failed_once: set[tuple[str, str]] = set()
        self._failed_lock = threading.Lock()

    def modes(self, job_id: str | None) -> set[str]:
        """The fault modes that apply to `job_id`."""
        return {mode for pattern, mode in self.settings.faults.items()
                if job_id is not None and fnmatch.fnmatchcase(job_id, pattern)}

    def first_time(self, key: tuple[str, str]) -> bool:
        with self._failed_lock:
            first = key not in self._failed_once
            self._failed_once.add(key)
            return first

    def engine(self, model: str | None = None, revision: str | None = None, *, tiny_vae: str | None = None,
               in_use: bool = True) -> DiffusionEngine:
        engine = super().engine(model, revision, tiny_vae=tiny_vae, in_use=in_use)
        return FaultyEngine(engine, self)  # type: ignore[return-value]

    def sign(self, data: bytes, job_id: str, variant: Variant, model: str, revision: str | None,
             source: Source | None = None) -> Signed | None:
        if "fail-sign" in self.modes(job_id):
            raise SigningFailed(f"injected fault (fail-sign) for job {job_id}")
        return super().sign(data, job_id, variant, model, revision, source)

    @property
    def checker(self) -> OutputChecker:
        return FaultyChecker(super().checker, self)  # type: ignore[return-value]

    @property
    def store(self) -> BlobStore:
        return FaultyStore(super().store, self)  # type: ignore[return-value]


class FaultyEngine:
    """The engine, failing `fail-once` and `fail-always` jobs' GPU calls before they start."""

    def __init__(self, engine: DiffusionEngine, services: FaultyServices):
        self.engine = engine
        self.services = services

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def generate(self, batch: Batch, *args: Any, **kwargs: Any) -> Any:
        job_id = telemetry.current_job_id()
        modes = self.services.modes(job_id)
        first_time = self.services.first_time((str(job_id), batch.id)) if modes else False
        for mode in modes:
            if mode == "fail-always" or (mode == "fail-once" and first_time):
                raise RuntimeError(f"injected fault ({mode}) for job {job_id} batch {batch.id}")
        return self.engine.generate(batch, *args, **kwargs)


class FaultyStore:
    """The blob store, failing `fail-drop` files' reads for their jobs (`get_dropped`); the
    read that moves a file aside (`get_dropped_version`) still works."""

    def __init__(self, store: BlobStore, services: FaultyServices):
        self.store = store
        self.services = services

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_dropped(self, name: str) -> bytes:
        if "fail-drop" in self.services.modes(name):
            raise RuntimeError(f"injected fault (fail-drop) reading prompts/{name}")
        return self.store.get_dropped(name)


class FaultyChecker:
    """The output checker, making the first image of a `fail-check-once` job unchecked.

    Decided here in the host, which sees every call of the job (there may be several checker
    processes): the image is checked as usual, then held in quarantine as if its check had
    failed."""

    def __init__(self, checker: OutputChecker, services: FaultyServices):
        self.checker = checker
        self.services = services

    def __getattr__(self, name: str) -> Any:
        return getattr(self.checker, name)

    def submit(self, call: GpuCall) -> Future:
        checked = self.checker.submit(call)
        if "fail-check-once" not in self.services.modes(call.job_id) or not self.services.first_time(
                (call.job_id, "check")):
            return checked
        failed: Future = Future()

        def fail_first(done: Future) -> None:
            try:
                failed.set_result(self.fail_first_check(done.result()))
            except BaseException as error:  # noqa: BLE001 - the caller sees the check's own failure
                failed.set_exception(error)

        checked.add_done_callback(fail_first)
        return failed

    def fail_first_check(self, checked: list[CheckedImage]) -> list[CheckedImage]:
        if not checked:
            return checked
        first = checked[0]
        store = self.services.store
        if first.ref != first.image.held:  # it went to outputs/: take it back
            store.put(first.image.held, store.get(first.ref))
            store.delete(first.ref)
        verdict = unchecked_verdict("none", "injected fault (fail-check-once) checking image 0")
        return [first.model_copy(update={"verdict": verdict, "ref": first.image.held}), *checked[1:]]
