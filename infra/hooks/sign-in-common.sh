# What the two sign-in hooks share; sourced by them, not run. POSIX sh.
#
# Every line they print starts with "sign-in:". None of them ever prints a secret.

say() {
    printf 'sign-in: %s\n' "$*"
}

warn() {
    printf 'sign-in: WARNING: %s\n' "$*" >&2
}

fail() {
    printf 'sign-in: %s\n' "$*" >&2
    exit 1
}

# SIGN_IN=off is for those who put their own front in front of the app: then the hooks touch
# nothing in Entra ID and the Bicep configures no sign-in.
exit_unless_sign_in_is_entra() {
    case "${SIGN_IN:-entra}" in
        entra) ;;
        off)
            say "SIGN_IN is off: no app registration, no built-in sign-in (the routes need a function key)."
            exit 0
            ;;
        *) fail "SIGN_IN must be entra or off, got '${SIGN_IN}' (azd env set SIGN_IN entra|off)" ;;
    esac
}

require_az() {
    command -v az >/dev/null 2>&1 ||
        fail "sign-in needs the Azure CLI (az) for the Entra ID app registration: install it and run az login, or azd env set SIGN_IN off"
}

# The registration was made by the preprovision hook (not brought by the user): the hooks may
# change it, and a failure to is an error rather than a note.
registration_is_ours() {
    [ -n "${AUTH_CLIENT_ID:-}" ] && [ "${AUTH_CLIENT_CREATED_BY_HOOK:-}" = true ]
}

# Entra ID replicates a new object for a few seconds: a call about it right after its creation
# can answer "does not exist". Runs "$@" up to 5 times, 3 seconds apart.
with_retries() {
    tries=1
    until "$@"; do
        [ "$tries" -lt 5 ] || return 1
        tries=$((tries + 1))
        sleep 3
    done
}
