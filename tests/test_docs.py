"""The README documents every setting the app reads, and the commands it promises exist."""

from pathlib import Path

from imagegen.cli.exits import Exit
from imagegen.core.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_configuration_table_lists_every_setting_with_its_default():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, (default, _) in SETTINGS.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README's configuration table has no row for `{name}`"
        assert (f"`{default}`" if default else "—") in row, f"README gives the wrong default for `{name}`"


def test_the_readme_commands_are_make_targets():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "setup"):
        assert f"\n{target}:" in makefile


def test_the_readme_documents_every_exit_code_of_the_cli():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| exit | meaning |"):].split("\n\n")[0]
    documented = {int(line.split("|")[1]) for line in table.splitlines()[2:]}
    assert documented == {code.value for code in Exit}
