"""Activities: thin side-effecting steps, each one call into `imagegen.service.operations`."""

from activities.functions import bp

__all__ = ["bp"]
