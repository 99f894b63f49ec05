"""`imagegen download JOB --to DIR`: a job's images, manifest and contact sheet on this machine."""

from __future__ import annotations

import json
from pathlib import Path

from imagegen.cli.api import Api, quote_id
from imagegen.cli.contact_sheet import write_contact_sheet
from imagegen.cli.exits import file_error


def download(api: Api, job_id: str, to: Path) -> Path:
    """Images, manifest and an index.html contact sheet into `to/{job_id}/`; a reviewed
    job's approved images also into `to/{job_id}/published/`, from the published container."""
    job = quote_id(job_id)
    manifest = api.call_json("GET", f"jobs/{job}/manifest")
    directory = to / job_id
    images: dict[str, str] = {}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for variant in manifest["variants"]:
            if variant["status"] != "ok":
                continue
            name = f"{variant['id']}{Path(variant['blob']).suffix}"
            (directory / name).write_bytes(api.call("GET", f"jobs/{job}/images/{quote_id(variant['id'])}").content)
            images[variant["id"]] = name
            if (variant.get("review") or {}).get("published"):
                (directory / "published").mkdir(exist_ok=True)
                (directory / "published" / name).write_bytes(
                    api.call("GET", f"jobs/{job}/published/{quote_id(variant['id'])}").content)
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return write_contact_sheet(directory, manifest, images)
    except OSError as error:
        raise file_error(Path(error.filename or directory), error, doing="write") from None
