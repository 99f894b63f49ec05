"""The `imagegen` command."""
