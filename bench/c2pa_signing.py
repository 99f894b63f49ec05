"""Milliseconds to sign one image with Content Credentials (C2PA), and to verify it.

What signing adds to each image the pipeline publishes: a 512x512 PNG and a 1024x1024
JPEG (noise, so the encoders cannot shortcut), signed with the local development signer
(ES256, key in memory), and the same through the `keyvault` signer: the real Key Vault
SDK clients against the local HTTPS server the tests use (tests/imagegen/key_vault_server.py),
so the figure is the SDK, TLS and callback overhead of one `sign` call without the network
round trip to a real vault. One warm-up call is not timed; each figure is the median of
--runs calls. Prints a markdown table with the load average.

  python bench/c2pa_signing.py [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image

from imagegen.checks import provenance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Key Vault server, from a checkout
from imagegen.checks.keyvault_signer import KeyVaultSigner
from tests.imagegen.key_vault_server import KeyVaultServer

CASES = (("png", 512), ("jpeg", 1024))


def noise_image(format: str, side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format.upper())
    return buffer.getvalue()


def median_ms(call, runs: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        key = provenance.local_signing_key(Path(folder))
        trust = provenance.local_ca_path(Path(folder)).read_text()
        generation = provenance.Generation(job_id="bench", variant_id="v000", model="tiny", seed=0, steps=25,
                                           guidance=7.5, width=512, height=512, scheduler="dpm++")
        with KeyVaultServer() as vault:
            vault.add_certificate("c2pa", x509.load_pem_x509_certificates(key.chain_pem.encode()),
                                  serialization.load_pem_private_key(key.key_pem.encode(), None))
            keyvault = KeyVaultSigner(vault.url, "c2pa", vault.credential(), **vault.client_options())
            print(f"load average {os.getloadavg()[0]:.1f}")
            print("| image | bytes | sign, local (ms) | sign, keyvault to a local server (ms) | verify (ms) "
                  "| bytes added |")
            print("|---|---:|---:|---:|---:|---:|")
            for format, side in CASES:
                data = noise_image(format, side)
                signed = provenance.sign(data, format, generation, key, "bench").data
                sign_ms = median_ms(lambda: provenance.sign(data, format, generation, key, "bench"), args.runs)
                keyvault_ms = median_ms(lambda: provenance.sign(data, format, generation, keyvault, "bench"),
                                        args.runs)
                verify_ms = median_ms(lambda: provenance.verify(signed, format, trust), args.runs)
                print(f"| {side}x{side} {format.upper()} | {len(data):,} | {sign_ms:.1f} | {keyvault_ms:.1f} "
                      f"| {verify_ms:.1f} | {len(signed) - len(data):,} |")


if __name__ == "__main__":
    main()
