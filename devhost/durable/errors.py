"""Errors the engine raises to its callers; each carries the data it is about."""

from __future__ import annotations


class DurableError(Exception):
    """Base of the engine's errors (the host maps them to HTTP statuses)."""


class UnknownOrchestrator(DurableError):
    """No orchestrator of that name is registered (HTTP 400)."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"orchestrator '{name}' is not registered; known: {', '.join(known) or '(none)'}")


class InstanceExists(DurableError):
    """An instance with that id is still Pending, Running or Suspended (HTTP 409)."""

    def __init__(self, instance_id: str, status: str):
        self.instance_id, self.status = instance_id, status
        super().__init__(f"instance '{instance_id}' already exists and is {status}")


class InstanceNotFound(DurableError):
    """No instance with that id (HTTP 404)."""

    def __init__(self, instance_id: str):
        self.instance_id = instance_id
        super().__init__(f"instance '{instance_id}' was not found")


class InstanceNotRunning(DurableError):
    """The instance has finished, so it takes no more events or requests (HTTP 410)."""

    def __init__(self, instance_id: str, status: str):
        self.instance_id, self.status = instance_id, status
        super().__init__(f"instance '{instance_id}' is {status}, not running")
