"""`IMAGEGEN_SIGN_IN=entra`: built-in authentication guards the routes, so the Functions host
asks for no function key there (a browser sends none); off, the routes need one as before.
Routes sign-in does not guard keep their own rule: the Foundry route still needs a key.
And no key ever travels in a page: a key in the gallery's address is never copied into a link."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import requests

from imagegen import gallery_pages
from tests.app.conftest import launch_app, tiny_job

KEY = "test-key-not-a-secret"
BEHIND_SIGN_IN = ("/api/jobs", "/api/gallery")


@pytest.fixture(scope="module", params=["entra", "off"])
def keyed_app(request, tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, args=("--require-keys",),
                      FUNCTIONS_KEY=KEY, IMAGEGEN_SIGN_IN=request.param)
    yield request.param, host
    host.stop()


@pytest.mark.parametrize("path", BEHIND_SIGN_IN)
def test_routes_behind_sign_in_need_a_function_key_only_without_sign_in(keyed_app, path):
    sign_in, host = keyed_app
    bare = requests.get(f"{host.url}{path}", timeout=60)
    keyed = requests.get(f"{host.url}{path}", headers={"x-functions-key": KEY}, timeout=60)
    assert keyed.status_code == 200, keyed.text
    assert bare.status_code == (200 if sign_in == "entra" else 401), bare.text


def test_routes_outside_sign_in_keep_their_own_rule(keyed_app):
    _, host = keyed_app
    assert requests.get(f"{host.url}/api/health", timeout=60).status_code == 200
    # No IMAGEGEN_API_KEY: the Foundry route, which sign-in does not guard, keeps function keys.
    foundry = requests.post(f"{host.url}/api/images/generations", json={"prompt": "a kite"}, timeout=60)
    assert foundry.status_code == 401


class PageUrls(HTMLParser):
    """Every address a page sends the browser to: links, form actions, sources, refreshes."""

    ATTRIBUTES = {"href", "src", "action", "formaction", "data-refresh", "data-job", "content"}

    def __init__(self, page: str):
        super().__init__()
        self.urls: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in self.ATTRIBUTES and value]


def test_no_key_travels_in_a_gallery_link_form_or_redirect(keyed_app):
    """Someone who opens the gallery with a function key in its address (`?code=`) or header
    must not find the key copied into the page: a link, a form, an image or a redirect that
    carries it ends up in browser history, Referer headers and screenshots."""
    _, host = keyed_app
    submitted = requests.post(f"{host.url}/api/jobs", json=tiny_job("gallery-links"),
                              headers={"x-functions-key": KEY}, timeout=60)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["jobId"]
    for path in ("/api/gallery", "/api/gallery?status=running", f"/api/gallery/jobs/{job_id}", "/api/gallery/new"):
        separator = "&" if "?" in path else "?"
        for url, headers in ((f"{host.url}{path}{separator}code={KEY}", {}), (f"{host.url}{path}", {"x-functions-key": KEY})):
            page = requests.get(url, headers=headers, allow_redirects=False, timeout=60)
            assert page.status_code == 200, (url, page.text)
            assert KEY not in page.text and KEY not in page.headers.get("Location", ""), url
            urls = PageUrls(page.text).urls
            assert urls, f"{url}: a page with no links at all cannot show that they are keyless"
            assert not [u for u in urls if "code=" in u or "key=" in u.lower()], (url, urls)
    # The script builds the addresses it fetches and redirects to; none takes a key.
    script = gallery_pages.static_file("gallery.js")[0].decode()
    assert "code=" not in script and "functions-key" not in script.lower() and "location.search" not in script
