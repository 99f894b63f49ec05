"""The collaborators every operation uses, built once per process and handed in.

`Services` holds the settings, read once, and what is built from them: the blob store,
the safety provider, the C2PA signer, the diffusion engines, the output checker, the
webhook sender and the clock. Each is built on first use (torch, the C2PA SDK and the safety
models load only in a process that needs them) and then kept for the life of the process:
the SDK clients are thread-safe and hold connection pools, an engine holds a model in memory.

A process gets its services from `imagegen.service.process.start()`, which reads the
environment once; tests build their own: `Services(Settings(...))`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from imagegen.checks.safety import SafetyProvider, build_provider
from imagegen.core.settings import Settings
from imagegen.service import notify
from imagegen.service.job_events import JobEvents
from imagegen.storage.blobs import BlobStore, open_store

if TYPE_CHECKING:
    from imagegen.checks.keyvault_signer import KeyVaultSigner
    from imagegen.checks.provenance import Signed, SigningKey, Source
    from imagegen.core.types import Variant
    from imagegen.generation.engine import DiffusionEngine
    from imagegen.service.output_checks import OutputChecker
    from imagegen.service.signer_readiness import SignerReadiness


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Services:
    """What the operations use. Built once per process (`start`) or by a test from settings."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now,
                 send_webhook: Callable[..., notify.NotifyRecord] = notify.send):
        self.settings = settings
        self.clock = clock
        self.send_webhook = send_webhook
        self.job_events = JobEvents()  # the sync Foundry route waits on these in this process
        self._built: dict[str, Any] = {}
        self._engines: dict[tuple[str, str | None], DiffusionEngine] = {}
        self._lock = threading.RLock()

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    @property
    def store(self) -> BlobStore:
        """The blob store; its containers are created on first use (in Azure the Bicep does)."""
        return self._once("store", lambda: open_store(self.settings))

    @property
    def safety(self) -> SafetyProvider:
        """The safety provider `SAFETY_PROVIDER` names; raises ValueError for one that cannot work."""
        return self._once("safety", lambda: build_provider(self.settings))

    @property
    def signer(self) -> SigningKey | KeyVaultSigner | None:
        """The C2PA signer `C2PA_SIGNER` names, None when signing is off. Kept: a Key Vault
        signer caches its certificate chain and its credential's token between images."""
        def build():
            from imagegen.checks import provenance  # the C2PA SDK loads only where it signs

            return provenance.signer_from_settings(self.settings)

        return self._once("signer", build)

    @property
    def signer_readiness(self) -> SignerReadiness:
        """Whether the signer can sign, as health shows it; checked as the process starts."""
        def build():
            from imagegen.service.signer_readiness import SignerReadiness

            return SignerReadiness(self)

        return self._once("signer_readiness", build)

    def sign(self, data: bytes, job_id: str, variant: Variant, model: str, revision: str | None,
             source: Source | None = None) -> Signed | None:
        """`data` signed with Content Credentials; None when signing is off. Raises
        `SigningFailed` (the image is then held back, unsigned)."""
        from imagegen.checks import provenance

        return provenance.sign_variant(data, job_id, variant, model, revision, self.signer, self.settings, source)

    @property
    def checker(self) -> OutputChecker:
        """Where each GPU call's images are signed, checked and stored (`IMAGEGEN_CHECK_PROCESSES`)."""
        def build():
            from imagegen.service.output_checks import OutputChecker

            return OutputChecker(self)

        return self._once("checker", build)

    def engine(self, model: str | None = None, revision: str | None = None) -> DiffusionEngine:
        """The engine for `model` (default `IMAGEGEN_MODEL`), loaded on first use and kept."""
        from imagegen.generation import tiny_model
        from imagegen.generation.engine import DiffusionEngine  # torch loads only where we generate

        model = model or self.settings.model
        if revision is None and model == self.settings.model:
            revision = self.settings.model_revision
        if revision is None and model == tiny_model.TINY_MODEL_ID:
            revision = tiny_model.TINY_REVISION  # one key, one engine, however it is asked for
        with self._lock:
            key = (model, revision)
            if key not in self._engines:
                self._engines[key] = DiffusionEngine(model, revision, settings=self.settings)
            return self._engines[key]

    def close(self) -> None:
        """Stop the output checker once the checks it holds are done."""
        checker = self._built.get("checker")
        if checker is not None:
            checker.stop()
