"""Send messages to the app's Storage queues (the render orders and their answers).

Messages are base64 text, the encoding the Functions queue trigger reads by default
(host.json `extensions.queues.messageEncoding`), and small: a blob name, never a payload
(a queue message holds at most 64 KiB).
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy

from imagegen.core.settings import Settings
from imagegen.storage.blobs import normalize_connection_string


class QueueSender:
    """Sends text to a queue by name; a queue that does not exist yet is created (locally
    nothing else creates it; in Azure the Bicep does)."""

    def __init__(self, service: QueueServiceClient):
        self._service = service

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> "QueueSender":
        """The connection string when set (local, Azurite), else the queue service URI (Azure)."""
        if settings.storage_connection_string:
            return cls(QueueServiceClient.from_connection_string(
                normalize_connection_string(settings.storage_connection_string), **client_options))
        if settings.storage_queue_service_uri:
            from azure.identity import DefaultAzureCredential  # slow import: only when needed

            return cls(QueueServiceClient(account_url=settings.storage_queue_service_uri,
                                          credential=DefaultAzureCredential(), **client_options))
        raise ValueError("storage queues are not configured: set `AzureWebJobsStorage` (a connection string, "
                         "`UseDevelopmentStorage=true` locally) or `AzureWebJobsStorage__queueServiceUri` "
                         "(managed identity)")

    def send(self, queue: str, text: str) -> None:
        client = self._service.get_queue_client(queue, message_encode_policy=TextBase64EncodePolicy())
        try:
            client.send_message(text)
        except ResourceNotFoundError:
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            client.send_message(text)
