"""`imagegen verify FILES`: what each image's Content Credentials (C2PA) say, and whether they hold.

Exits 0 when every file has valid credentials (trusted, with `--trust`), else 1. A file
that cannot be checked (missing, not a PNG, JPEG or WebP, unreadable) is one line on stderr,
and the others are still checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from imagegen.cli.exits import CliError, Exit, file_error, one_line

READABLE = ("png", "jpg", "jpeg", "webp")


def verify_files(files: list[Path], trust: Path | None, as_json: bool) -> int:
    """Print what each file's Content Credentials say; 1 when any has none, they do not
    hold, or the file could not be checked."""
    trust_pem = read_trust(trust) if trust else None
    results, ok = {}, True
    for path in files:
        try:
            found = check_file(path, trust_pem)
        except CliError as error:
            print(f"imagegen verify: error: {error}", file=sys.stderr)
            results[str(path)] = {"valid": False, "error": str(error)}
            ok = False
            continue
        passed = found.valid and (found.trusted or trust_pem is None)
        ok = ok and passed
        results[str(path)] = found.model_dump() | {"valid": passed}
        if not as_json:
            print_verification(path, found, passed, trust_pem is not None)
    if as_json:
        print(json.dumps(results, indent=2))
    return Exit.OK if ok else Exit.ERROR


def check_file(path: Path, trust_pem: str | None):
    """What `path`'s credentials say; a `CliError` when it cannot be checked."""
    import c2pa

    from imagegen.checks import provenance  # the C2PA library loads only for this command

    data = read_image(path)
    try:
        return provenance.verify(data, path.suffix.lstrip("."), trust_pem)
    except c2pa.C2paError as error:
        raise CliError(f"{path} is not a readable {path.suffix.lstrip('.').upper()} image (C2PA: {error}): "
                       "check that the file is a whole image") from None


def read_trust(trust: Path) -> str:
    try:
        return trust.read_text(encoding="utf-8")
    except OSError as error:
        raise file_error(trust, error) from None
    except UnicodeDecodeError:
        raise CliError(f"--trust {trust} is not a PEM file: give the CA certificate(s), e.g. "
                       ".devhost/c2pa/dev-ca.pem") from None


def read_image(path: Path) -> bytes:
    """The file's bytes, when it is a kind of image C2PA reads here."""
    if path.suffix.lower().lstrip(".") not in READABLE:
        raise CliError(f"{path} is not an image verify can read: give .png, .jpg/.jpeg or .webp files")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise file_error(path, error) from None
    return data


def print_verification(path: Path, found, passed: bool, trust_checked: bool) -> None:
    from imagegen.checks import provenance

    print(f"{path}: {'valid' if passed else 'NOT valid'}")
    if found.has_credentials:
        print(f"  signature {'valid' if found.signature_valid else 'INVALID'}, "
              f"hard binding {'valid' if found.hard_binding_valid else 'INVALID'}, "
              f"{'trusted' if found.trusted else 'untrusted' if trust_checked else 'trust not checked'}; "
              f"signer {found.signer}")
        made = ("AI-generated (IPTC trainedAlgorithmicMedia)"
                if found.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
                else found.digital_source_type)
        print(f"  {made}; job {found.job_id}, variant {found.variant_id}"
              + (f"; from {', '.join(found.ingredients)}" if found.ingredients else ""))
    for failure in found.failures:
        print(f"  {one_line(failure)}")
