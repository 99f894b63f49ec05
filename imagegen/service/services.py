"""The collaborators every operation uses, built once per process and handed in.

`Services` holds the settings, read once, and what is built from them: the blob store,
the queues, the safety provider, the C2PA signer, the model catalog and each model's facts, the diffusion
engines, the output checker, the webhook sender and the clock. Each is built on first use
(torch, the C2PA SDK and the safety models load only in a process that needs them) and then
kept for the life of the process: the SDK clients are thread-safe and hold connection pools,
an engine holds a model in memory. Engines are kept one per model, but at most
`IMAGEGEN_MAX_LOADED_MODELS` of them hold their weights: asking for another unloads the
least recently used.

A process gets its services from `imagegen.service.process.start()`, which reads the
environment once; tests build their own: `Services(Settings(...))`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from imagegen.checks.safety import SafetyProvider, build_provider
from imagegen.core.settings import Settings
from imagegen.generation.catalog import CatalogEntry, Models, deployment_models
from imagegen.generation.families import TINY_MODEL_ID, TINY_REVISION, ModelFacts, read_model_facts
from imagegen.service import notify
from imagegen.service.job_events import JobEvents
from imagegen.storage.blobs import BlobStore, open_store
from imagegen.storage.queues import QueueSender

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
        # Engines by (model, revision, tiny VAE), least recently used first.
        self._engines: OrderedDict[tuple[str, str | None, str | None], DiffusionEngine] = OrderedDict()
        self._facts: dict[str, ModelFacts] = {}  # by catalog name
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
    def queues(self) -> QueueSender:
        """Sends the render orders to the GPU pool and its answers back."""
        return self._once("queues", lambda: QueueSender.from_settings(self.settings))

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

    @property
    def models(self) -> Models:
        """The models jobs may name (`IMAGEGEN_MODELS`) and the default (`IMAGEGEN_MODEL`),
        read once; ValueError naming the setting for a catalog that cannot work."""
        return self._once("models", lambda: deployment_models(self.settings))

    def model_facts(self, name: str | None) -> ModelFacts:
        """The family and defaults of the model `name` (None: the default), read once from
        its config files (no weights). JobValidationError for a name not in the catalog."""
        name, entry = self.models.entry(name)
        with self._lock:
            if name not in self._facts:
                self._facts[name] = read_model_facts(entry.source, entry.revision)
            return self._facts[name]

    def model_engine(self, name: str | None, *, in_use: bool = True) -> DiffusionEngine:
        """The engine of the catalog's model `name` (None: the default)."""
        _, entry = self.models.entry(name)
        return self.engine(entry.source, entry.revision, tiny_vae=entry.tiny_vae, in_use=in_use)

    def engine(self, model: str | None = None, revision: str | None = None, *, tiny_vae: str | None = None,
               in_use: bool = True) -> DiffusionEngine:
        """The engine for `model` (default `IMAGEGEN_MODEL`), made on first use and kept.

        `in_use`: the caller is about to generate with it, so it becomes the most recently
        used, and the least recently used others are unloaded until at most
        `IMAGEGEN_MAX_LOADED_MODELS` hold weights with it (each waits for its running call).
        False (describing, health) changes nothing."""
        from imagegen.generation.engine import DiffusionEngine  # torch loads only where we generate

        key = self._engine_key(model, revision, tiny_vae)
        with self._lock:
            if key not in self._engines:
                self._engines[key] = DiffusionEngine(*key[:2], settings=self.settings, tiny_vae=key[2])
            engine = self._engines[key]
            if not in_use:
                return engine
            self._engines.move_to_end(key)
            others = [other for other_key, other in reversed(self._engines.items()) if other_key != key and other.loaded]
            evicted = others[max(0, self.settings.max_loaded_models - 1):]
        for other in evicted:  # outside the lock: an unload waits for the engine's running call
            other.unload()
        return engine

    def engines(self) -> list[DiffusionEngine]:
        """Every engine made so far, least recently used first."""
        with self._lock:
            return list(self._engines.values())

    def _engine_key(self, model: str | None, revision: str | None,
                    tiny_vae: str | None) -> tuple[str, str | None, str | None]:
        """One key, one engine, however the model is asked for: the default's revision and
        tiny VAE come from the settings, and the tiny model has one revision."""
        model = model or self.settings.model
        if model == self.settings.model:
            revision = revision if revision is not None else self.settings.model_revision
            tiny_vae = tiny_vae if tiny_vae is not None else self.settings.tiny_vae
        if revision is None and model == TINY_MODEL_ID:
            revision = TINY_REVISION
        return model, revision, tiny_vae

    def is_loaded(self, entry: CatalogEntry) -> bool:
        """Whether the catalog entry's model holds its weights in this process."""
        key = self._engine_key(entry.source, entry.revision, entry.tiny_vae)
        with self._lock:
            engine = self._engines.get(key)
            return engine is not None and engine.loaded

    def close(self) -> None:
        """Stop the output checker once the checks it holds are done."""
        checker = self._built.get("checker")
        if checker is not None:
            checker.stop()
