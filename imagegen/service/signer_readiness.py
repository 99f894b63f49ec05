"""Whether the process's C2PA signer can sign: checked as the process starts, shown by health.

A signer that cannot sign holds every image back (fail closed). Without this check that
showed only in each variant's `unchecked` reason. Now `process.start()` checks the signer
once, in a thread (so the host starts while Key Vault answers), and

- logs the outcome in **one line**: why it cannot sign, or which certificate signs;
- `GET /api/health` (`operations.health`) answers 503 with the problem while it cannot.

The check does what signing an image does: it builds the signer and signs a 1-pixel probe
image with it (for `keyvault`: reads the certificate, creating the self-signed one when
there is none, and makes one Key Vault `sign` call), so the role, the key, the chain and the
C2PA SDK's rules for the certificate are all tried. The `local` development signer is only
loaded (its files), not probed: devhost starts many processes, and its key cannot be refused.

A failed check is made again when health asks, at most every `RECHECK_SECONDS`: a role
assignment takes minutes to reach Key Vault after a first deployment, and the replica
should heal without a restart. Health waits at most `HEALTH_WAIT_SECONDS` for a check in
progress (probes time out at 10 s), and then answers that the signer is still being checked.

`problem` is what health shows anonymously: a fixed sentence with at most an HTTP status
(`KeyVaultUnusable.problem`), never Key Vault's own words or the vault's address; `reason`
is the full story, for the log only.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from imagegen.core.types import SigningFailed

if TYPE_CHECKING:
    from imagegen.checks.provenance import Generation
    from imagegen.service.services import Services

log = logging.getLogger(__name__)

HEALTH_WAIT_SECONDS = 8.0
RECHECK_SECONDS = 60.0
STILL_CHECKING = "the C2PA signer is still being checked (Key Vault has not answered yet)"


@dataclass(frozen=True)
class SignerState:
    """What health shows of the signer."""

    signer: str  # C2PA_SIGNER
    ready: bool
    certificate: str | None = None  # "self-signed", "issued" (by a CA), "development"; None: off or unknown
    problem: str | None = None  # public: safe to show anyone
    reason: str | None = None  # for the log: may quote Key Vault


class SignerReadiness:
    """The signer's state, checked once in a thread at start and again (failed only) on demand."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self._services = services
        self._clock = clock
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state: SignerState | None = None
        self._checked_at = 0.0
        self._running = False
        self._logged: tuple[bool, str | None] | None = None

    def start(self) -> None:
        """Check in a thread (`process.start()` calls this as the process starts)."""
        self._begin(background=True)

    def state(self, wait: float = HEALTH_WAIT_SECONDS) -> SignerState:
        """The signer's state; a failed one older than `RECHECK_SECONDS` is checked again."""
        with self._lock:
            stale = (self._state is not None and not self._state.ready
                     and self._clock() - self._checked_at >= RECHECK_SECONDS)
            first = self._state is None and not self._running
        if first or stale:
            self._begin(background=not first)
        self._done.wait(wait)
        with self._lock:
            if self._state is None:
                return SignerState(self._services.settings.c2pa_signer, False, problem=STILL_CHECKING)
            return self._state

    # -- the check ------------------------------------------------------------------------

    def _begin(self, background: bool) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            if self._state is None:
                self._done.clear()
        if background:
            threading.Thread(target=self._run, name="imagegen-signer-check", daemon=True).start()
        else:
            self._run()

    def _run(self) -> None:
        state = self._check()
        with self._lock:
            self._state, self._checked_at, self._running = state, self._clock(), False
        self._done.set()
        self._log(state)

    def _check(self) -> SignerState:
        name = self._services.settings.c2pa_signer
        try:
            signer = self._services.signer
            if signer is None:
                return SignerState(name, True)
            if name == "local":
                return SignerState(name, True, "development")
            from imagegen.checks import provenance  # the C2PA SDK loads only where it signs

            provenance.sign(_probe_png(), "png", _probe_generation(), signer, provenance.software_agent())
            return SignerState(name, True, getattr(signer, "certificate_origin", None))
        except SigningFailed as failure:
            problem = failure.problem or "a probe signature with the signing certificate failed; the log says why"
            return SignerState(name, False, problem=problem, reason=failure.reason)
        except Exception as error:  # noqa: BLE001 - whatever stops signing is reported, never raised into a start
            return SignerState(name, False, problem="the C2PA signer could not be built; the log says why",
                               reason=f"{type(error).__name__}: {error}")

    def _log(self, state: SignerState) -> None:
        # One line per change of state: at start, and when a failed signer heals or changes why.
        key = (state.ready, state.reason)
        if key == self._logged:
            return
        self._logged = key
        if not state.ready:
            log.error("C2PA signer `%s` cannot sign: %s. Images are held in quarantine as unchecked until it can; "
                      "GET /api/health answers 503.", state.signer, state.reason)
        elif state.certificate == "self-signed":
            log.warning("C2PA signer `%s` signs with a self-signed certificate%s: valid signatures, untrusted chain "
                        "until you bring a CA-issued one (docs/provenance.md).", state.signer,
                        " it had Key Vault create" if getattr(self._services.signer, "created_self_signed", False)
                        else "")
        else:
            log.info("C2PA signer `%s` can sign (%s certificate).", state.signer, state.certificate or "no")


def _probe_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (0, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _probe_generation() -> Generation:
    """What the probe's manifest says: no job, no model."""
    from imagegen.checks.provenance import Generation

    return Generation(job_id="signer-check", variant_id="probe", model="none", seed=0, steps=0, guidance=0.0,
                      width=1, height=1, scheduler="none")
