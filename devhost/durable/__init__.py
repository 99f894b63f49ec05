"""devhost's durable engine: the backend that feeds the real Durable SDK its history.

    registry = Registry.from_functions(app.get_functions())
    engine = DurableEngine(registry, ".devhost/taskhub.sqlite", max_activities=10)
    await engine.start()
    instance_id = await engine.start_new("hello", None, '"Tokyo"')
    status = await engine.wait_for(instance_id, timeout=30)
    await engine.stop()

Modules: `history` (event factories), `core` (pure episode logic), `store` (SQLite task
hub), `engine` (the I/O loop), `status` (status bodies, list query), `registry`.
"""

from devhost.durable.engine import DurableEngine, EngineStats
from devhost.durable.errors import DurableError, InstanceExists, InstanceNotFound, InstanceNotRunning, UnknownOrchestrator
from devhost.durable.registry import Registry

__all__ = ["DurableEngine", "EngineStats", "Registry", "DurableError", "InstanceExists",
           "InstanceNotFound", "InstanceNotRunning", "UnknownOrchestrator"]
