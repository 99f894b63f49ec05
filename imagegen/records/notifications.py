"""What the manifest records of a webhook call (`imagegen.service.notify` makes the calls)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

NotifyEvent = Literal["awaiting_review", "ended"]


class NotifyRecord(BaseModel):
    """One notification as the manifest records it: never the URL (it may hold a token)."""

    event: NotifyEvent
    host: str = Field(description="The webhook's host (the URL itself may carry a secret token)")
    status: Literal["sent", "failed", "refused"]
    attempts: int = Field(ge=0)
    http_status: int | None = None
    error: str | None = None
    at: datetime
