"""`clean_name`: every dropped file gets a name of its own in prompts-rejected, whatever its name."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegen.core.blob_names import (
    MAX_ASIDE_LENGTH,
    MAX_PATH_LENGTH,
    REPORT_SUFFIX,
    check_path,
    clean_name,
    rejected_error_ref,
)

# Names built from the pieces that could make two names meet: separators, `%` and what
# follows one in an encoding, dots, control characters, and the report's suffix.
PIECES = st.sampled_from(["/", "//", "%", "%2F", "%25", "%2E", "%~", ".", "..", "\t", "\x00", "\x7f", "\\", "a", "F",
                          "2", "~", "é", "名", " ", "#", "?", ".error.json", ".yaml"])
NAMES = st.lists(PIECES, min_size=1, max_size=8).map("".join)
ANY_NAMES = NAMES | st.text(min_size=1, max_size=60)
LONG_NAMES = st.builds(lambda stem, tail: stem * (1100 // len(stem)) + tail, NAMES, NAMES)


def original(aside: str) -> str:
    """The dropped name an aside name came from (all but the shortened ones)."""
    return aside if "%" not in aside else urllib.parse.unquote(aside, errors="surrogatepass")


@given(ANY_NAMES)
def test_an_aside_name_is_clean_and_decodes_to_the_name_it_came_from(name):
    aside = clean_name(name)
    assert check_path(aside) == aside and len(aside) <= MAX_ASIDE_LENGTH
    assert not aside.endswith((".", REPORT_SUFFIX))  # never a report's name, never a trailing dot
    assert len(rejected_error_ref(aside).split("/", 1)[1]) <= MAX_PATH_LENGTH
    assert original(aside) == name  # so no two names share one


@given(st.lists(NAMES, min_size=2, max_size=12, unique=True))
def test_different_names_never_share_an_aside_name_or_take_a_report_name(names):
    asides = [clean_name(name) for name in names]
    assert len(set(asides)) == len(names)
    reports = {aside + REPORT_SUFFIX for aside in asides}
    assert not reports & set(asides)


@given(st.lists(LONG_NAMES, min_size=2, max_size=4, unique=True))
def test_names_too_long_to_encode_whole_are_shortened_apart(names):
    asides = [clean_name(name) for name in names]
    assert len(set(asides)) == len(names)
    for name, aside in zip(names, asides):
        assert len(aside) <= MAX_ASIDE_LENGTH and check_path(aside) == aside
        assert "%~" in aside or original(aside) == name


@pytest.mark.parametrize("name, aside", [
    ("spring/banners.yaml", "spring/banners.yaml"),          # clean: as it is
    ("a//b.yaml", "a%2F%2Fb.yaml"),                          # the store cannot address it
    ("a%2F%2Fb.yaml", "a%252F%252Fb.yaml"),                  # ...and its literal twin: apart
    ("100%.yaml", "100%25.yaml"),
    ("tab\tname.yaml", "tab%09name.yaml"),
    ("..", "%2E%2E"),
    ("x.yaml.error.json", "x.yaml%2Eerror.json"),            # not the report of `x.yaml`
    ("notes.", "notes%2E"),
])
def test_examples(name, aside):
    assert clean_name(name) == aside
