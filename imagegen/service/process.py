"""The process's services: built once, as the process starts, from the environment.

`start()` is where a process gets its `Services`: the Functions host calls it as the app
loads (`function_app.py`). It is the one place that reads the environment
(`Settings.from_env`), checks every setting (`check_settings`), the model catalog
(`IMAGEGEN_MODELS`) and that the safety provider they name is installed
(`require_provider_packages`), sets up telemetry, and, when `IMAGEGEN_FAULTS` asks for it,
builds `FaultyServices` instead (`imagegen.service.faults`): the only module that imports
fault injection. It then starts the check of the C2PA signer (`SignerReadiness`: one log
line, and health says whether it can sign). Triggers and
activities take the services from `current()`.
"""

from __future__ import annotations

import threading

from imagegen.checks.safety import require_provider_packages
from imagegen.core import telemetry
from imagegen.core.settings import Settings
from imagegen.core.startup import check_settings
from imagegen.service.services import Services

_services: Services | None = None
_lock = threading.Lock()


def start(settings: Settings | None = None) -> Services:
    """The process's services: built on the first call, from `settings` or else from the
    environment (every setting checked: a bad one stops the start with its name), with fault
    injection when `IMAGEGEN_FAULTS` is set. Later calls return the same object."""
    global _services
    with _lock:
        if _services is None:
            settings = settings or check_settings(Settings.from_env())
            require_provider_packages(settings)
            telemetry.configure(settings)
            if settings.faults:
                from imagegen.service.faults import FaultyServices  # rehearsals and tests only

                services: Services = FaultyServices(settings)
            else:
                services = Services(settings)
            services.models  # noqa: B018 - the model catalog (IMAGEGEN_MODELS) checked now, not at the first job
            _services = services
            _services.signer_readiness.start()
        return _services


def current() -> Services:
    """The process's services (started from the environment if nothing started them yet)."""
    return _services or start()
