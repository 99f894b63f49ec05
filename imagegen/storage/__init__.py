"""Blob storage: the client, source images on their way in, manifests written and read."""
