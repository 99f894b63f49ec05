"""The `durableClient` input binding: the JSON string the SDK's `DurableOrchestrationClient` parses.

The SDK sends every call to `rpcBaseUrl`; `managementUrls` only feed the check-status payload
that `create_check_status_response` hands back to HTTP callers, so they point at the public
`/runtime/webhooks/durabletask` routes of this host (with `code=` when keys are required).
"""

from __future__ import annotations

import json
from urllib.parse import quote

INSTANCE_ID_PLACEHOLDER = "INSTANCEID"  # the SDK replaces this with the real id
WEBHOOK_PATH = "runtime/webhooks/durabletask"
RPC_PATH = "durabletask"


def query_string(task_hub: str, connection: str, key: str | None) -> str:
    """The query every public management URL carries, like the extension's `requiredQueryStringParameters`."""
    parts = [f"taskHub={quote(task_hub)}", f"connection={quote(connection)}"]
    if key:
        parts.append(f"code={quote(key)}")
    return "&".join(parts)


def management_urls(public_base: str, instance_id: str, task_hub: str, connection: str = "Storage",
                    key: str | None = None) -> dict[str, str]:
    """The management payload for one instance, as the extension's check-status response holds it."""
    base = f"{public_base.rstrip('/')}/{WEBHOOK_PATH}/instances/{instance_id}"
    query = query_string(task_hub, connection, key)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{base}?{query}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{base}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{base}?{query}",
        "restartPostUri": f"{base}/restart?{query}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{query}",
    }


def client_binding_json(public_base: str, rpc_base: str, task_hub: str, connection: str = "Storage",
                        key: str | None = None) -> str:
    """The binding JSON string for a function with `@app.durable_client_input`.

    `public_base` is the host's origin as callers see it (http://127.0.0.1:7071); `rpc_base` is
    the origin the SDK client calls from inside the host (a loopback-only port that needs no key).
    """
    webhook = f"{public_base.rstrip('/')}/{WEBHOOK_PATH}"
    query = query_string(task_hub, connection, key)
    binding = {
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?{query}",
            "createAndWaitOnNewInstancePostUri":
                f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}"
                f"&pollingInterval={{intervalInSeconds}}&{query}",
        },
        "managementUrls": management_urls(public_base, INSTANCE_ID_PLACEHOLDER, task_hub, connection, key),
        "baseUrl": webhook,
        "requiredQueryStringParameters": query,
        "rpcBaseUrl": f"{rpc_base.rstrip('/')}/{RPC_PATH}/",
    }
    return json.dumps(binding)
