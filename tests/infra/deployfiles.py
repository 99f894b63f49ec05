"""The repo's deployment files and how to read them (shared by the tests in tests/infra).

Bicep is parsed with checkov's own parser (pycep), the one `checkov --framework bicep`
uses, so these tests need no `bicep` CLI. None can be installed here: no registry we reach
serves one (npm has no `@azure/bicep`; `bicep-node` on npm and
`anthonycmartin-bicep-rpc-client` on PyPI download the CLI when they run; Debian has no
package; NuGet, which ships it, is not reachable). docs/deploy.md, "Notes and limits".
"""

from __future__ import annotations

import re
from pathlib import Path

from checkov.bicep.parser import Parser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def parse_bicep(path: Path) -> dict:
    template, _ = Parser().parse(path)
    if template is None:
        raise ValueError(f"checkov could not parse {path.relative_to(ROOT)}")
    return template


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs
