#!/bin/sh
# azd preprovision hook: the Entra ID app registration people sign in to the gallery with.
#
# It runs before the Bicep, so that the same provision turns sign-in on: it stores the client id
# and a client secret with `azd env set`, and azd reads its environment again after a hook and
# before it fills in infra/main.parameters.json (docs/deploy.md, "Signing in").
#
#   SIGN_IN=off                     nothing
#   no AUTH_CLIENT_ID               a new registration: single tenant, ID tokens, api://<client id>;
#                                   its enterprise application admits assigned people only, and
#                                   you are assigned; a client secret
#   AUTH_CLIENT_ID made by this     the same registration, checked and finished (a run that stopped
#   hook (AUTH_CLIENT_CREATED_BY_   half-way ends here); a new client secret only when
#   HOOK=true)                      AUTH_CLIENT_SECRET is empty
#   AUTH_CLIENT_ID of your own      nothing (the postprovision hook adds the redirect URI)
#
# The client secret goes from az into `azd env set` and is never printed.
set -eu
. "$(dirname "$0")/sign-in-common.sh"

DEFAULT_ACCESS_ROLE=00000000-0000-0000-0000-000000000000  # "assigned, without a specific app role"

# az works in one tenant at a time; the registration must be in the tenant of the subscription
# azd deploys to, which is the tenant the Bicep's auth config sends people to.
check_tenant() {
    az_tenant=$(az account show --query tenantId -o tsv) ||
        fail "az is not signed in: run az login (into the tenant of the subscription azd deploys to)"
    [ -n "${AZURE_SUBSCRIPTION_ID:-}" ] || return 0
    deploy_tenant=$(az account show --subscription "$AZURE_SUBSCRIPTION_ID" --query tenantId -o tsv) ||
        fail "az cannot see subscription $AZURE_SUBSCRIPTION_ID, the one azd deploys to: az login --tenant <its tenant>"
    [ "$az_tenant" = "$deploy_tenant" ] ||
        fail "az is signed in to tenant $az_tenant, but subscription $AZURE_SUBSCRIPTION_ID is in tenant $deploy_tenant: az account set --subscription $AZURE_SUBSCRIPTION_ID"
}

create_registration() {
    display_name="Durable Diffusion (${AZURE_ENV_NAME:-azd})"
    client_id=$(az ad app create --display-name "$display_name" --sign-in-audience AzureADMyOrg \
        --enable-id-token-issuance true --query appId -o tsv) ||
        fail "could not create an app registration (your tenant may not let users register applications): ask an admin for one and bring it (docs/deploy.md), or azd env set SIGN_IN off"
    # Kept at once: a run that fails further on finds this registration next time.
    azd env set AUTH_CLIENT_ID "$client_id"
    azd env set AUTH_CLIENT_CREATED_BY_HOOK true
    say "created the app registration '$display_name' (client id $client_id)"
}

# Access tokens for the API (`imagegen --entra-scope api://<client id>/.default`) name it.
ensure_identifier_uri() {
    uri="api://$client_id"
    has_uri=$(with_retries az ad app show --id "$client_id" --query "contains(identifierUris, '$uri')" -o tsv) ||
        fail "AUTH_CLIENT_ID $client_id names no app registration az can read; to have a new one made: azd env set AUTH_CLIENT_ID '' and azd env set AUTH_CLIENT_SECRET ''"
    [ "$has_uri" = true ] && return 0
    with_retries az ad app update --id "$client_id" --identifier-uris "$uri"
    say "set the identifier URI $uri"
}

# The enterprise application (service principal) with appRoleAssignmentRequired: only the
# people and groups assigned to it may sign in, not everyone in the tenant.
ensure_enterprise_app() {
    if ! sp_id=$(az ad sp show --id "$client_id" --query id -o tsv 2>/dev/null); then
        sp_id=$(with_retries az ad sp create --id "$client_id" --query id -o tsv)
        say "created its enterprise application"
    fi
    required=$(with_retries az ad sp show --id "$sp_id" --query appRoleAssignmentRequired -o tsv)
    [ "$required" = true ] && return 0
    with_retries az ad sp update --id "$sp_id" --set appRoleAssignmentRequired=true
    say "only people assigned to the enterprise application may sign in"
}

graph_endpoint() {
    graph=$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)
    case "$graph" in */) ;; *) graph="$graph/" ;; esac
}

# The person running azd, so that they can sign in right after `azd up`. azd does not keep
# AZURE_PRINCIPAL_ID in its environment unless someone sets it, so az says who is signed in.
assign_deploying_user() {
    principal_id=${AZURE_PRINCIPAL_ID:-}
    principal_type=${AZURE_PRINCIPAL_TYPE:-User}
    if [ -z "$principal_id" ]; then
        if [ "$(az account show --query user.type -o tsv)" != user ]; then
            say "az is signed in as a service principal: nobody assigned; assign people or a group to the enterprise application"
            return 0
        fi
        principal_id=$(az ad signed-in-user show --query id -o tsv)
        principal_type=User
    fi
    if [ "$principal_type" != User ]; then
        say "AZURE_PRINCIPAL_TYPE is $principal_type: nobody assigned; assign people or a group to the enterprise application"
        return 0
    fi
    graph_endpoint
    if ! assigned=$(with_retries az rest --method GET \
        --uri "${graph}v1.0/users/$principal_id/appRoleAssignments?\$filter=resourceId%20eq%20$sp_id" \
        --query "length(value)" -o tsv); then
        warn "could not check whether you are assigned to the enterprise application: if the sign-in refuses you, assign yourself (Enterprise applications > Durable Diffusion > Users and groups)"
        return 0
    fi
    [ "$assigned" = 0 ] || return 0
    body="{\"principalId\": \"$principal_id\", \"resourceId\": \"$sp_id\", \"appRoleId\": \"$DEFAULT_ACCESS_ROLE\"}"
    if with_retries az rest --method POST --uri "${graph}v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \
        --headers "Content-Type=application/json" --body "$body" >/dev/null; then
        say "assigned you ($principal_id) to the enterprise application: you can sign in"
    else
        warn "could not assign you to the enterprise application: until someone does (Enterprise applications > Durable Diffusion > Users and groups), the sign-in refuses you"
    fi
}

ensure_client_secret() {
    if [ -n "${AUTH_CLIENT_SECRET:-}" ]; then
        return 0
    fi
    # --append: a reset without it would delete the registration's other secrets.
    if secret=$(az ad app credential reset --id "$client_id" --append --only-show-errors \
        --display-name "easy-auth (${AZURE_ENV_NAME:-azd})" --years 1 --query password -o tsv); then
        # "--": a secret may begin with "-", which azd would take for a flag.
        azd env set AUTH_CLIENT_SECRET -- "$secret"
        unset secret
        say "added a client secret (valid 1 year) and stored it in the azd environment as AUTH_CLIENT_SECRET"
    else
        warn "could not add a client secret (a tenant policy may forbid them): sign-in works with ID tokens alone, but sessions cannot be refreshed silently; the next azd provision tries again"
    fi
}

exit_unless_sign_in_is_entra
if [ -n "${AUTH_CLIENT_ID:-}" ] && ! registration_is_ours; then
    say "AUTH_CLIENT_ID $AUTH_CLIENT_ID is a registration of your own: left as it is"
    exit 0
fi
require_az
check_tenant
client_id=${AUTH_CLIENT_ID:-}
if [ -z "$client_id" ]; then
    create_registration
else
    say "reusing the app registration $client_id (AUTH_CLIENT_ID)"
fi
ensure_identifier_uri
ensure_enterprise_app
assign_deploying_user
ensure_client_secret
