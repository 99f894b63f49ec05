"""A job file on this machine → the body `POST /api/jobs` takes, with any problem reading it
as one line naming the file and what to fix."""

from __future__ import annotations

import base64
import json
import mimetypes
from pathlib import Path

import yaml

from imagegen.cli.exits import CliError, file_error


def job_body(path: Path) -> tuple[bytes, str, dict[str, str]]:
    """Body, content type and query for a job file; local source images are sent inline.

    A `.txt` file goes as it is, named by its stem: the app reads it as it reads a dropped one.
    """
    if path.suffix.lower() == ".txt":
        return read_bytes(path), "text/plain; charset=utf-8", {"name": path.stem}
    document = read_document(path)
    if isinstance(document, dict):
        inline_local_images(document, path.parent)
    return json.dumps(document).encode(), "application/json", {}


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise file_error(path, error) from None


def read_document(path: Path) -> object:
    """The JSON (`.json`) or YAML (anything else) in `path`."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text: a job file is YAML, JSON or text (one prompt a line), "
                       "saved as UTF-8") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}): "
                       "fix it and try again") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise CliError(f"{path} is not valid YAML ({where}{error.problem or error.context}): fix it and try again") from None
    except yaml.YAMLError as error:
        raise CliError(f"{path} is not valid YAML ({error}): fix it and try again") from None
    except RecursionError:
        raise CliError(f"{path} nests too deeply to read: flatten it") from None


def inline_local_images(document: dict, folder: Path) -> None:
    """Each prompt's `image` that names a file beside the job becomes a `data:` URL."""
    prompts = document.get("prompts")
    for prompt in prompts if isinstance(prompts, list) else []:
        image = prompt.get("image") if isinstance(prompt, dict) else None
        local = folder / image if isinstance(image, str) and not image.startswith("data:") else None
        if local is not None and local.is_file():
            kind = mimetypes.guess_type(local.name)[0] or "image/png"
            prompt["image"] = f"data:{kind};base64,{base64.b64encode(read_bytes(local)).decode()}"
