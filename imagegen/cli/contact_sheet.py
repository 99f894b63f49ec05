"""`index.html`: one page showing every image of a job with its prompt, seed and verdict."""

from __future__ import annotations

import html
from pathlib import Path

STATUS_COLOURS = {"ok": "#1a7f37", "blocked": "#cf222e", "unchecked": "#9a6700", "failed": "#6e7781",
                  "cancelled": "#6e7781"}


def speedups_text(variant: dict) -> str:
    """The speed-ups that made this image, so it is never mistaken for a full-quality one."""
    used = []
    if variant.get("deepcache", 1) > 1:
        used.append(f'DeepCache {variant["deepcache"]}')
    if variant.get("tiny_vae"):
        used.append("tiny VAE")
    return "".join(f" · {name}" for name in used)


def credentials_mark(variant: dict) -> str:
    """A mark on an image signed with C2PA Content Credentials, naming the signer."""
    credentials = variant.get("content_credentials")
    if not credentials:
        return ""
    signer = html.escape(credentials.get("signer", ""))
    return (f'<p class="signed" title="C2PA manifest {html.escape(credentials.get("manifest_label", ""))}">'
            f'Content Credentials · signed by {signer}</p>')


def contact_sheet(manifest: dict, images: dict[str, str]) -> str:
    """HTML for `manifest`; `images` maps variant id to the downloaded file's name."""
    cards = []
    for variant in manifest["variants"]:
        status = variant["status"]
        verdict = variant.get("output_verdict") or variant.get("input_verdict") or {}
        reasons = "; ".join(verdict.get("reasons", [])) or variant.get("error") or ""
        severities = ", ".join(f"{name} {level}" for name, level in verdict.get("severities", {}).items())
        checked = (f'verdict {verdict["status"]} ({verdict.get("provider", "")}{": " + severities if severities else ""})'
                   if verdict else "not checked")
        picture = (f'<img src="{html.escape(images[variant["id"]])}" alt="{html.escape(variant["prompt"])}">'
                   if variant["id"] in images else f'<div class="none">{html.escape(status)}</div>')
        cards.append(f"""
  <figure>
    {picture}
    <figcaption>
      <p class="prompt">{html.escape(variant["prompt"])}</p>
      <p>seed {variant["seed"]} · {variant["width"]}×{variant["height"]} · {variant["steps"]} steps · {html.escape(variant["scheduler"])}{speedups_text(variant)}</p>
      <p><span class="status" style="background:{STATUS_COLOURS.get(status, '#6e7781')}">{html.escape(status)}</span>
         {html.escape(checked)} {html.escape(reasons)}</p>
      {credentials_mark(variant)}
    </figcaption>
  </figure>""")
    totals = manifest.get("totals", {})
    title = f'{manifest.get("name", "")} — {manifest.get("job_id", "")}'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
 main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 1rem; }}
 figure {{ margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem; }}
 img, .none {{ width: 100%; aspect-ratio: 1; object-fit: contain; background: #f6f8fa; }}
 .none {{ display: flex; align-items: center; justify-content: center; color: #6e7781; }}
 .prompt {{ font-weight: 600; }} p {{ margin: .25rem 0; font-size: .85rem; }}
 .status {{ color: white; border-radius: 1em; padding: 0 .5em; }}
 .signed {{ color: #0969da; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>status {html.escape(str(manifest.get("status", "")))} · {totals.get("ok", 0)} ok · {totals.get("blocked", 0)} blocked ·
 {totals.get("unchecked", 0)} unchecked · {totals.get("failed", 0)} failed · {totals.get("cancelled", 0)} cancelled</p>
<main>{"".join(cards)}
</main>
</body></html>
"""


def write_contact_sheet(directory: Path, manifest: dict, images: dict[str, str]) -> Path:
    path = directory / "index.html"
    path.write_text(contact_sheet(manifest, images), encoding="utf-8")
    return path
