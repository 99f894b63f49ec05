"""`imagegen drop FILE`: hand a job file to the app, into storage or through the API.

- **Into storage** (`AzureWebJobsStorage`, or `AzureWebJobsStorage__blobServiceUri` with your
  Azure login, and no `--url`/`IMAGEGEN_URL`): the file is uploaded into the `prompts`
  container and the app's blob trigger starts its job. The job's source is `blob`; the same
  file uploaded again unchanged never runs twice; images it names are read from beside it in
  `prompts`; a file the app cannot run is moved to `prompts-rejected/` with its reasons
  (the upload itself succeeds).
- **Through the API** (`--url` or `IMAGEGEN_URL`): the file is submitted as a job, as
  `imagegen submit` does (`POST /api/jobs`; the API has no route that takes a file into
  `prompts`). The job's source is `http`; it runs every time it is dropped; images it names
  are read beside it on this machine and sent inline; a bad file is refused at once (exit 1,
  its problems on one line) and nothing is kept of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagegen.cli.api import Api, socket_reason
from imagegen.cli.exits import CliError, file_error
from imagegen.cli.job_files import job_body

STORAGE_SETTINGS = ("AzureWebJobsStorage", "AzureWebJobsStorage__blobServiceUri")


def storage_configured() -> bool:
    return any(os.environ.get(name, "").strip() for name in STORAGE_SETTINGS)


def nowhere_to_drop(path: Path) -> CliError:
    return CliError(f"nowhere to drop {path.name}: set AzureWebJobsStorage (a storage connection string; "
                    "UseDevelopmentStorage=true for Azurite) or AzureWebJobsStorage__blobServiceUri to upload it into "
                    "the prompts container, or give --url (or IMAGEGEN_URL) to submit it through the API")


def drop_through_api(api: Api, path: Path) -> str:
    """Submit the file as a job; its job id."""
    return api.submit(*job_body(path))["jobId"]


def drop_into_storage(path: Path) -> str:
    """Upload the file into the `prompts` container; the blob it became (`prompts/NAME`)."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob import LinearRetry

    from imagegen.core.blob_names import prompt_ref
    from imagegen.core.settings import Settings
    from imagegen.storage.blobs import BlobStore

    try:
        data = path.read_bytes()
    except OSError as error:
        raise file_error(path, error) from None
    try:
        ref = prompt_ref(path.name)
    except ValueError as error:
        raise CliError(f"{path.name} cannot be a blob name ({error}): rename the file") from None
    try:
        # The storage settings as the app reads them. A person waits: two retries about a second apart,
        # where the SDK's own policy (the app's) takes a minute and a half to give up on an unreachable account.
        retry = LinearRetry(backoff=1, retry_total=2, random_jitter_range=1)
        store = BlobStore.from_settings(Settings.from_env(), retry_policy=retry)
        store.ensure_containers()
        store.put(ref, data)
    except ValueError as error:  # a setting the app would refuse too, named by its message
        raise CliError(f"{str(error).rstrip('.')}: fix the setting and drop again") from None
    except AzureError as error:
        raise storage_error(path, error) from None
    return ref


def storage_error(path: Path, error: Exception) -> CliError:
    """Why an upload into `prompts` failed, and what to do, in one line."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    text = str(getattr(error, "message", None) or error).strip()
    reason = text.splitlines()[0] if text else type(error).__name__
    status = getattr(error, "status_code", None)
    if isinstance(error, ClientAuthenticationError) and status is None:  # no token: the credential's own failure
        return CliError(f"cannot upload {path.name}: no Azure login for storage ({reason}): sign in with az login")
    if isinstance(error, HttpResponseError) and status in (401, 403):
        return CliError(f"cannot upload {path.name}: storage refused it ({status}: {reason}): your login needs the "
                        "Storage Blob Data Contributor role on the account (docs/deploy.md), or check the key in "
                        "AzureWebJobsStorage")
    if isinstance(error, ServiceRequestError):
        return CliError(f"cannot reach storage to upload {path.name} ({socket_reason(error)}): is Azurite running, and do "
                        "AzureWebJobsStorage / AzureWebJobsStorage__blobServiceUri name the right account?")
    return CliError(f"cannot upload {path.name} into the prompts container: {reason}")
