"""Stand-ins for `az`, `azd` and `sleep`, for running the sign-in hooks (infra/hooks/) here,
where there is no Azure: `python fake_cli.py az ad app create ...`.

Each call is appended to `calls.jsonl` in the folder FAKE_CLI_STATE names, as the argv list.
`az` answers from a small directory kept in `directory.json` there: one tenant, the signed-in
principal, app registrations, service principals and app role assignments; `--query` is applied
with JMESPath and `-o tsv` printed the way az prints it, so the hooks read the answers as they
would read az's. `azd env set` writes `environment.json` there, the azd environment the next
hook is given. Anything else the hooks might call is answered with exit 2, so a test notices.

`failures` in directory.json makes calls fail: {"ad app update": 1} fails the next one.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jmespath

# What `az ad app credential reset` answers: the tests look for it in everything the hooks print.
SECRET = "fake-client-secret-Q8~xK2vNlmP0aZ"
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
# Options of az that take several values (nargs='+').
MANY_VALUES = {"--identifier-uris", "--web-redirect-uris"}
FLAGS = {"--append", "--only-show-errors"}


def new_directory(tenant: str = "tenant-1", user_type: str = "user") -> dict:
    return {"tenant": tenant, "subscriptions": {"sub-1": tenant}, "user": {"type": user_type, "id": "user-1"},
            "applications": [], "servicePrincipals": [], "assignments": [], "failures": {}}


class Failed(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """'ad app update', {'--id': 'x', '--web-redirect-uris': ['a', 'b']} from az's argv."""
    words = []
    while argv and not argv[0].startswith("-"):
        words.append(argv.pop(0))
    options: dict[str, Any] = {}
    while argv:
        name = argv.pop(0)
        if name in FLAGS:
            options[name] = True
        elif name in MANY_VALUES:
            options[name] = []
            while argv and not argv[0].startswith("--"):
                options[name].append(argv.pop(0))
        else:
            options[name] = argv.pop(0)
    return " ".join(words), options


def tsv(result: Any) -> str:
    """az's `-o tsv` (knack's _TsvOutput) for the shapes the hooks ask for."""
    rows = result if isinstance(result, list) else [result]
    lines = []
    for row in rows:
        if isinstance(row, bool):
            lines.append(str(row).lower())
        elif isinstance(row, dict):
            lines.append("\t".join("" if isinstance(v, dict) else str(v) for _, v in sorted(row.items())))
        else:
            lines.append(str(row))
    return "".join(line + "\n" for line in lines)


def find(items: list[dict], identifier: str, *keys: str) -> dict:
    for item in items:
        if any(item.get(key) == identifier for key in keys):
            return item
    raise Failed(f"Resource '{identifier}' does not exist or one of its queried reference-property objects are not present.", 3)


def az(directory: dict, argv: list[str]) -> Any:
    command, options = parse(argv)
    if command in directory["failures"] and directory["failures"][command] > 0:
        directory["failures"][command] -= 1
        raise Failed(f"(fake) {command} failed")
    apps, sps = directory["applications"], directory["servicePrincipals"]
    if command == "account show":
        subscription = options.get("--subscription")
        if subscription is not None and subscription not in directory["subscriptions"]:
            raise Failed(f"Subscription '{subscription}' not found.")
        tenant = directory["subscriptions"][subscription] if subscription else directory["tenant"]
        return {"tenantId": tenant, "user": {"type": directory["user"]["type"], "name": "someone"}}
    if command == "cloud show":
        return {"name": "AzureCloud", "endpoints": {"microsoftGraphResourceId": "https://graph.microsoft.com/"}}
    if command == "ad signed-in-user show":
        if directory["user"]["type"] != "user":
            raise Failed("/me request is only valid with delegated authentication flow.")
        return {"id": directory["user"]["id"]}
    if command == "ad app create":
        app = {"appId": str(uuid.uuid4()), "id": str(uuid.uuid4()), "displayName": options["--display-name"],
               "signInAudience": options.get("--sign-in-audience", "AzureADMyOrg"), "identifierUris": [],
               "web": {"redirectUris": options.get("--web-redirect-uris", []),
                       "implicitGrantSettings": {"enableIdTokenIssuance": options.get("--enable-id-token-issuance") == "true"}},
               "passwordCredentials": []}
        apps.append(app)
        return app
    if command == "ad app show":
        return find(apps, options["--id"], "appId", "id")
    if command == "ad app update":
        app = find(apps, options["--id"], "appId", "id")
        if "--identifier-uris" in options:
            app["identifierUris"] = options["--identifier-uris"]
        if "--web-redirect-uris" in options:
            app["web"]["redirectUris"] = options["--web-redirect-uris"]
        return None
    if command == "ad app credential reset":
        app = find(apps, options["--id"], "appId", "id")
        if not options.get("--append"):
            app["passwordCredentials"] = []
        app["passwordCredentials"].append({"displayName": options.get("--display-name"), "years": options.get("--years")})
        if not options.get("--only-show-errors"):
            print("WARNING: The output includes credentials that you must protect. Be sure that you do not include "
                  "these credentials in your code or check the credentials into your source control.", file=sys.stderr)
        return {"appId": app["appId"], "password": SECRET, "tenant": directory["tenant"]}
    if command == "ad sp show":
        return find(sps, options["--id"], "appId", "id")
    if command == "ad sp create":
        app = find(apps, options["--id"], "appId", "id")
        sp = {"id": str(uuid.uuid4()), "appId": app["appId"], "appRoleAssignmentRequired": False}
        sps.append(sp)
        return sp
    if command == "ad sp update":
        sp = find(sps, options["--id"], "appId", "id")
        name, _, value = options["--set"].partition("=")
        sp[name] = value == "true"
        return None
    if command == "rest":
        return graph(directory, options["--method"].upper(), options["--uri"], options.get("--body"))
    raise Failed(f"fake az: no stand-in for `az {command}`", 2)


def graph(directory: dict, method: str, uri: str, body: str | None) -> Any:
    url = urlsplit(uri)
    if url.netloc != "graph.microsoft.com":
        raise Failed(f"fake az rest: not Microsoft Graph: {uri}", 2)
    path = url.path.split("/")[2:]  # after /v1.0
    if method == "GET" and len(path) == 3 and path[0] == "users" and path[2] == "appRoleAssignments":
        query = unquote(url.query)
        resource = query.removeprefix("$filter=resourceId eq ")
        if resource == query:
            raise Failed(f"fake az rest: no stand-in for the query {query!r}", 2)
        return {"value": [a for a in directory["assignments"] if a["principalId"] == path[1] and a["resourceId"] == resource]}
    if method == "POST" and len(path) == 3 and path[0] == "servicePrincipals" and path[2] == "appRoleAssignedTo":
        assignment = json.loads(body or "{}")
        find(directory["servicePrincipals"], assignment["resourceId"], "id")
        if assignment in directory["assignments"]:
            raise Failed("Permission being assigned already exists on the object", 1)
        directory["assignments"].append(assignment)
        return {"id": str(uuid.uuid4()), **assignment}
    raise Failed(f"fake az rest: no stand-in for {method} {uri}", 2)


def run_az(state: Path, argv: list[str]) -> int:
    directory = json.loads((state / "directory.json").read_text())
    argv = list(argv)
    output = "json"
    query = None
    for name in ("--query", "-o", "--output"):
        if name in argv:
            at = argv.index(name)
            value = argv[at + 1]
            del argv[at:at + 2]
            if name == "--query":
                query = value
            else:
                output = value
    try:
        result = az(directory, argv)
    except Failed as failure:
        print(f"ERROR: {failure}", file=sys.stderr)
        return failure.code
    finally:
        (state / "directory.json").write_text(json.dumps(directory, indent=1))
    if query is not None:
        result = jmespath.search(query, result)
    if result is not None:
        print(tsv(result) if output == "tsv" else json.dumps(result, indent=2), end="")
    return 0


def run_azd(state: Path, argv: list[str]) -> int:
    argv = [arg for arg in argv if arg != "--"]  # the end of azd's flags, as cobra reads it
    if argv[:2] != ["env", "set"] or len(argv) != 4:
        print(f"fake azd: no stand-in for `azd {' '.join(argv)}`", file=sys.stderr)
        return 2
    path = state / "environment.json"
    environment = json.loads(path.read_text())
    environment[argv[2]] = argv[3]
    path.write_text(json.dumps(environment, indent=1))
    return 0


def main(program: str, argv: list[str]) -> int:
    state = Path(os.environ["FAKE_CLI_STATE"])
    with (state / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps([program, *argv]) + "\n")
    if program == "az":
        return run_az(state, argv)
    if program == "azd":
        return run_azd(state, argv)
    return 0  # sleep: no time passes here


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
