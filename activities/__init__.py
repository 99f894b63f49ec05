"""Activities: thin side-effecting steps, each one call into `imagegen.steps`."""

from activities.steps import bp

__all__ = ["bp"]
