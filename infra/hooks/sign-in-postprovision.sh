#!/bin/sh
# azd postprovision hook: the app registration's redirect URI, on the address the provision
# gave the app (APP_URL, a Bicep output): Entra ID sends people back only to a listed URI.
#
# For a registration of your own (AUTH_CLIENT_ID set by you) this is all the hooks do; if az may
# not change it (you do not own it, or azd runs as a service principal in CI), it says what to
# add instead of failing the deployment. The other redirect URIs stay.
set -eu
. "$(dirname "$0")/sign-in-common.sh"

# Sign-in works only once the registration lists the callback; for a registration the hooks made
# that is an error, for one of yours the owner adds it.
cannot_change_registration() {
    message="$1: add $callback to its Web redirect URIs (Entra admin center > App registrations > $client_id > Authentication)"
    registration_is_ours && fail "$message"
    warn "$message"
    exit 0
}

# The provision reads AUTH_CLIENT_ID from main.parameters.json; an azd that reads it before the
# preprovision hook has set it provisions without sign-in this once.
check_sign_in_was_provisioned() {
    [ "${SIGN_IN_CLIENT_ID:-}" = "$client_id" ] && return 0
    warn "this provision did not turn sign-in on with $client_id (an azd older than 1.10.2 reads its parameters before the preprovision hook's values): run azd provision once more"
}

ensure_redirect_uri() {
    if ! uris=$(az ad app show --id "$client_id" --query web.redirectUris -o tsv); then
        cannot_change_registration "could not read the app registration $client_id"
    fi
    if printf '%s\n' "$uris" | grep -qxF "$callback"; then
        return 0
    fi
    set -f  # the URIs are words of the command line, never patterns
    # shellcheck disable=SC2086  # one word per URI
    az ad app update --id "$client_id" --web-redirect-uris $uris "$callback" ||
        cannot_change_registration "could not add the redirect URI to the app registration $client_id"
    set +f
    say "added the redirect URI $callback"
}

exit_unless_sign_in_is_entra
client_id=${AUTH_CLIENT_ID:-}
if [ -z "$client_id" ]; then
    say "no AUTH_CLIENT_ID: sign-in is not configured"
    exit 0
fi
[ -n "${APP_URL:-}" ] || fail "APP_URL is not in the azd environment: the provision gave the app no address"
callback="${APP_URL%/}/.auth/login/aad/callback"
check_sign_in_was_provisioned
require_az
ensure_redirect_uri
