#!/bin/sh
# azd preprovision: what the Bicep needs before it runs, kept in the azd environment.
#  1. The Entra app registration the web app signs in with and the API accepts tokens for: one
#     multi-tenant registration (work and school accounts of any organisation), with the delegated
#     scope api://<client id>/access_as_user and v2 access tokens (aud = the client id). Created
#     here, with the Azure CLI, rather than in Bicep: the Microsoft Graph Bicep extension needs the
#     `extension` keyword and Graph types that the offline checks (pycep-parser, Azure's type files)
#     cannot read, and the SPA redirect URI is only known after provisioning (postprovision.sh).
#  2. PostgreSQL's Entra administrator: the signed-in user unless POSTGRES_ADMIN_OBJECT_ID is set
#     (set it, POSTGRES_ADMIN_NAME and POSTGRES_ADMIN_TYPE=Group, to use an operators group).
#  3. bicep/main.parameters.json from bicep/params/$FOLIO_ENVIRONMENT.parameters.json (parameters.py).
# Idempotent: a second run finds the registration by name and reuses the scope's id.
set -eu

: "${AZURE_ENV_NAME:?run through azd (azd up / azd provision)}"
env_set() { azd env set "$1" "$2" >/dev/null; }

FOLIO_ENVIRONMENT="${FOLIO_ENVIRONMENT:-dev}"  # dev | prod: which bicep/params/<env>.parameters.json azd deploys
env_set FOLIO_ENVIRONMENT "$FOLIO_ENVIRONMENT"
: "${AZURE_OPENAI_ENDPOINT:?set it first: azd env set AZURE_OPENAI_ENDPOINT https://<account>.openai.azure.com/}"

if [ -z "${POSTGRES_ADMIN_OBJECT_ID:-}" ]; then
  POSTGRES_ADMIN_OBJECT_ID=$(az ad signed-in-user show --query id -o tsv)
  POSTGRES_ADMIN_NAME=$(az ad signed-in-user show --query userPrincipalName -o tsv)
  POSTGRES_ADMIN_TYPE=User
  env_set POSTGRES_ADMIN_OBJECT_ID "$POSTGRES_ADMIN_OBJECT_ID"
  env_set POSTGRES_ADMIN_NAME "$POSTGRES_ADMIN_NAME"
  env_set POSTGRES_ADMIN_TYPE "$POSTGRES_ADMIN_TYPE"
fi

name="folio-${AZURE_ENV_NAME}"
client_id="${AUTH_CLIENT_ID:-}"
if [ -z "$client_id" ]; then
  client_id=$(az ad app list --display-name "$name" --query "[0].appId" -o tsv)
fi
if [ -z "$client_id" ]; then
  client_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMultipleOrgs --query appId -o tsv)
  echo "created the app registration $name ($client_id)"
fi
object_id=$(az ad app show --id "$client_id" --query id -o tsv)
scope_id=$(az ad app show --id "$client_id" --query "api.oauth2PermissionScopes[?value=='access_as_user'].id | [0]" -o tsv)
if [ -z "$scope_id" ]; then
  scope_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
fi
body=$(cat <<JSON
{
  "signInAudience": "AzureADMultipleOrgs",
  "identifierUris": ["api://$client_id"],
  "api": {
    "requestedAccessTokenVersion": 2,
    "oauth2PermissionScopes": [{
      "id": "$scope_id",
      "value": "access_as_user",
      "type": "User",
      "isEnabled": true,
      "adminConsentDisplayName": "Use Folio",
      "adminConsentDescription": "Lets the Folio web app call the Folio API as the signed-in user.",
      "userConsentDisplayName": "Use Folio",
      "userConsentDescription": "Lets the Folio web app call the Folio API as you."
    }]
  }
}
JSON
)
az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers Content-Type=application/json --body "$body" >/dev/null
env_set AUTH_CLIENT_ID "$client_id"
echo "app registration $name: client id $client_id, scope api://$client_id/access_as_user"

# 3. bicep/main.parameters.json, which azd passes to main.bicep: the environment's parameter file
#    plus the values above and the azd environment's (AZURE_PRINCIPAL_ID, AZURE_OPENAI_ENDPOINT, ...).
root=$(cd "$(dirname "$0")/../.." && pwd)
AUTH_CLIENT_ID="$client_id"
export FOLIO_ENVIRONMENT POSTGRES_ADMIN_OBJECT_ID POSTGRES_ADMIN_NAME AUTH_CLIENT_ID
[ -n "${POSTGRES_ADMIN_TYPE:-}" ] && export POSTGRES_ADMIN_TYPE
python3 "$root/bicep/hooks/parameters.py" "$root/bicep"
