"""The contact sheet says how each image was made, speed-ups included."""

from __future__ import annotations

from imagegen.cli.contact_sheet import contact_sheet


def entry(variant_id: str, **changes) -> dict:
    values = dict(id=variant_id, prompt="a <red> sneaker", seed=7, width=64, height=64, steps=4,
                  scheduler="dpmpp", status="ok", output_verdict={"status": "safe", "provider": "local"})
    return {**values, **changes}


def test_images_made_with_speedups_say_so_and_full_ones_do_not():
    manifest = {"name": "n", "job_id": "j", "variants": [
        entry("v000"), entry("v001", deepcache=3, tiny_vae=True), entry("v002", deepcache=1, tiny_vae=False)]}
    sheet = contact_sheet(manifest, {"v000": "v000.png", "v001": "v001.png"})
    assert sheet.count("4 steps · dpmpp · DeepCache 3 · tiny VAE</p>") == 1
    assert sheet.count("4 steps · dpmpp</p>") == 2
    assert "a &lt;red&gt; sneaker" in sheet and "<red>" not in sheet


def test_signed_images_are_marked_with_their_signer_and_unsigned_ones_are_not():
    credentials = {"manifest_label": "urn:c2pa:1234", "signer": "CN=Durable Diffusion <dev> signer"}
    manifest = {"name": "n", "job_id": "j", "variants": [entry("v000", content_credentials=credentials),
                                                         entry("v001")]}
    sheet = contact_sheet(manifest, {"v000": "v000.png", "v001": "v001.png"})
    assert sheet.count("Content Credentials · signed by CN=Durable Diffusion &lt;dev&gt; signer") == 1
    assert 'title="C2PA manifest urn:c2pa:1234"' in sheet
