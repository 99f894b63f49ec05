"""Blob names: the one place that names blobs. Pure: no client, no I/O.

Blobs are referred to everywhere by a *ref*, the string `"{container}/{path}"`
(e.g. `"outputs/job-1/v003.png"`): refs are what travel through orchestration history,
never bytes. The layout functions below (`output_ref`, `manifest_ref`, ...) are the only
code that builds refs, and they are deterministic, so an activity that is retried writes
the same name again and overwrites rather than duplicates.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse

# Every container the app uses; tests/infra compares this with the Bicep templates.
CONTAINERS: tuple[str, ...] = (
    "prompts",  # drop job files here (blob trigger)
    "prompts-rejected",  # job files that failed validation, each with NAME.error.json
    "schedules",  # schedule YAML files
    "inputs",  # img2img source images
    "outputs",  # published images: outputs/{job_id}/{variant_id}.{ext}
    "quarantine",  # blocked or unchecked images: quarantine/{job_id}/{variant_id}.{ext}
    "manifests",  # one JSON per job: manifests/{job_id}.json
    "published",  # images a reviewer approved: published/{job_id}/{variant_id}.{ext}
    "adapters",  # LoRA adapters jobs may name: adapters/{name}.safetensors
    "renders",  # orders to the GPU pool and its answers: renders/{job_id}/{batch_id}.{try}.order.json
)

# The queues between the control plane and the GPU pool (docs/architecture.md, "The GPU
# pool"): orders go out on one (`IMAGEGEN_RENDER_QUEUE`, this by default), answers come back
# on the other, and the host moves an order it failed on five times to the third.
RENDER_QUEUE = "render-orders"


def render_queues(orders: str = RENDER_QUEUE) -> tuple[str, str, str]:
    """The orders queue, its answers queue and its poison queue (the host's `-poison` name)."""
    return orders, f"{orders}-outcomes", f"{orders}-poison"

# Ids become one path segment: letters, digits, `.`, `_`, `-`, starting with a letter or
# digit (so never `.` or `..`), and short enough that every name stays far below Azure's
# 1,024-character blob name limit.
MAX_ID_LENGTH = 128
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXT = re.compile(r"[a-z0-9]{1,8}")
MAX_PATH_LENGTH = 1024



def check_id(value: str, field: str = "id") -> str:
    """Return `value` if it is safe as one path segment of a blob name, else raise ValueError."""
    if not isinstance(value, str) or value == "":
        raise ValueError(f"`{field}` must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(
            f"`{field}` must be at most {MAX_ID_LENGTH} characters, got {len(value)} ({value[:20]!r}...)"
        )
    if not _ID.fullmatch(value):
        raise ValueError(
            f"`{field}` must be letters, digits, `.`, `_` or `-`, starting with a letter or digit, "
            f"got {value!r}"
        )
    return value


def check_path(path: str, field: str = "name") -> str:
    """Return `path` if it is a clean blob path (`a/b.png`), else raise ValueError.

    Rejects what would name a different blob than it seems to: empty segments (`a//b`,
    leading or trailing `/`), `.` and `..` segments, backslashes and control characters.
    """
    if not isinstance(path, str) or path == "":
        raise ValueError(f"`{field}` must be a non-empty blob path, got {path!r}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"`{field}` must be at most {MAX_PATH_LENGTH} characters, got {len(path)}")
    if "\\" in path or any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise ValueError(f"`{field}` must not contain backslashes or control characters, got {path!r}")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"`{field}` must not have empty, `.` or `..` path segments, got {path!r}"
            )
    return path


def check_container(container: str) -> str:
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)}; got {container!r}")
    return container


def split_ref(ref: str) -> tuple[str, str]:
    """`"outputs/job-1/v003.png"` -> `("outputs", "job-1/v003.png")`, validating both parts."""
    if not isinstance(ref, str) or "/" not in ref:
        raise ValueError(f"blob ref must look like `container/path`, got {ref!r}")
    container, path = ref.split("/", 1)
    if container not in CONTAINERS:
        raise ValueError(
            f"blob ref `{ref}` names unknown container {container!r}; "
            f"containers are {', '.join(CONTAINERS)}"
        )
    check_path(path, field=f"path of blob ref `{ref}`")
    return container, path


def _ext(ext: str) -> str:
    if not isinstance(ext, str) or not _EXT.fullmatch(ext):
        raise ValueError(f"`ext` must be 1 to 8 lowercase letters or digits without a dot, got {ext!r}")
    return ext


def prompt_ref(name: str) -> str:
    return f"prompts/{check_path(name)}"


# What `rejected_error_ref` adds to a rejected file's name for its report: a file name
# must leave room for it, and must not itself end with it (or it would be another's report).
REPORT_SUFFIX = ".error.json"
MAX_ASIDE_LENGTH = MAX_PATH_LENGTH - len(REPORT_SUFFIX)
# Marks a name shortened to fit (with the whole name's digest after it): `quote` always
# writes `%` and two hex digits, so no name it encodes holds `%~`.
_SHORTENED = "%~"


def clean_name(name: str) -> str:
    """The name a dropped file `prompts/{name}` is moved aside under, in `prompts-rejected`.

    One-to-one: two different names never get the same one, nor another's report name.
    - A clean blob path without `%` stays as it is (`spring/banners.yaml`), unless it ends
      with a dot or with `.error.json` or leaves no room for its report's suffix.
    - Any other name is percent-encoded into one flat segment (`a//b.yaml` -> `a%2F%2Fb.yaml`,
      `100%.yaml` -> `100%25.yaml`, a literal `a%2F%2Fb.yaml` -> `a%252F%252Fb.yaml`):
      every such name holds a `%`, which no name of the first kind does, and decodes back
      to the name it came from. A dot that ends it, or that starts a trailing
      `.error.json`, is encoded too (`%2E`): Azure's naming rules warn off a trailing dot.
    - A name whose encoding is too long for a report beside it is the start of that
      encoding, `%~` and the sha256 of the whole name.
    """
    if not name:
        raise ValueError("a dropped file always has a name; got the empty name")
    if "%" not in name and not name.endswith((".", REPORT_SUFFIX)) and len(name) <= MAX_ASIDE_LENGTH:
        try:
            return check_path(name)
        except ValueError:
            pass
    encoded = urllib.parse.quote(name, safe="", errors="surrogatepass")
    bare = encoded.rstrip(".")
    encoded = bare + "%2E" * (len(encoded) - len(bare))
    if encoded.endswith(REPORT_SUFFIX):
        encoded = encoded[: -len(REPORT_SUFFIX)] + "%2E" + REPORT_SUFFIX[1:]
    if len(encoded) > MAX_ASIDE_LENGTH:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        encoded = encoded[: MAX_ASIDE_LENGTH - len(_SHORTENED) - len(digest)] + _SHORTENED + digest
    return check_path(encoded)


def rejected_ref(name: str) -> str:
    """Where a job file `prompts/{name}` goes when it is rejected."""
    return f"prompts-rejected/{check_path(name)}"


def rejected_error_ref(name: str) -> str:
    """The error report written beside a rejected job file."""
    return f"prompts-rejected/{check_path(name)}{REPORT_SUFFIX}"


def schedule_error_ref(name: str) -> str:
    """The error report written beside an invalid schedule file (deleted once it is fixed)."""
    return f"schedules/{check_path(name)}.error.json"


def input_ref(name: str) -> str:
    """An img2img source image, e.g. `input_ref("sneaker.png")` -> `"inputs/sneaker.png"`."""
    return f"inputs/{check_path(name)}"


def output_ref(job_id: str, variant_id: str, ext: str) -> str:
    """A published image: `outputs/{job_id}/{variant_id}.{ext}`."""
    return f"outputs/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def quarantine_ref(job_id: str, variant_id: str, ext: str) -> str:
    """A blocked or unchecked image, never published: `quarantine/{job_id}/{variant_id}.{ext}`."""
    return f"quarantine/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def published_ref(job_id: str, variant_id: str, ext: str) -> str:
    """An image a reviewer approved: `published/{job_id}/{variant_id}.{ext}`."""
    return f"published/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def manifest_ref(job_id: str) -> str:
    return f"manifests/{check_id(job_id, 'job_id')}.json"


def review_passes_ref(job_id: str) -> str:
    """The review passes people sent for a job, in the order they came (the review's ledger)."""
    return f"manifests/{check_id(job_id, 'job_id')}.review-passes.json"


def cancel_marker_ref(job_id: str) -> str:
    """Written when a job is cancelled: the GPU work of that job looks for it and stops.

    A blob rather than the durable status, so an activity learns of it with the storage
    access it already has, in Azure as under devhost.
    """
    return f"manifests/{check_id(job_id, 'job_id')}.cancelled"


def render_order_ref(job_id: str, batch_id: str, attempt: int) -> str:
    """Try `attempt` at one batch, as the GPU pool reads it: `renders/{job_id}/{batch_id}.{attempt}.order.json`."""
    return f"renders/{check_id(job_id, 'job_id')}/{check_id(batch_id, 'batch_id')}.{int(attempt)}.order.json"


def render_outcome_ref(order_ref: str) -> str:
    """The GPU pool's answer to an order, beside it: `….{attempt}.outcome.json`."""
    if not order_ref.startswith("renders/") or not order_ref.endswith(".order.json"):
        raise ValueError(f"not a render order: {order_ref!r}")
    return order_ref.removesuffix(".order.json") + ".outcome.json"
