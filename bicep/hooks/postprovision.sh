#!/bin/sh
# azd postprovision: what needs the provisioned resources and cannot be Bicep.
#  1. The web app's origin as a SPA redirect URI of the app registration (preprovision.sh).
#  2. The key that signs each transaction's tenant context (DATABASE_CONTEXT_KEY, migration 0009):
#     Key Vault secret database-context-key in the app's vault, created once (48 random bytes,
#     base64) and never printed or put on a command line. The function app reads it from the vault
#     by name (KEY_VAULT_URL, shared/config.py); step 4 installs it in the database.
#  3. The app identity's PostgreSQL role (pgaadauth_create_principal, as the Entra administrator):
#     the app connects as this non-owner role so that row-level security applies to it.
#  4. Migrations as the Entra administrator (`python -m shared.cli migrate`, an Entra token as the
#     password, port 5432 not PgBouncer), with the production embedding settings (1536 dimensions)
#     and the context key, given to that one process only.
# Steps 3-4 need a network path to PostgreSQL. dev (public access): a firewall rule for this
# machine's address is added for the duration and removed again. prod (VNet-injected): run this
# script from inside the VNet (CI runner, jump host) with the same azd environment values exported.
set -eu

: "${AUTH_CLIENT_ID:?missing: preprovision.sh sets it}"
: "${WEB_APP_URL:?missing: an output of bicep/main.bicep}"
: "${KEY_VAULT_NAME:?missing: an output of bicep/main.bicep}"
root=$(cd "$(dirname "$0")/../.." && pwd)

rule=""
keyfile=""
cleanup() {
  if [ -n "$keyfile" ]; then
    rm -f "$keyfile"
  fi
  if [ -n "$rule" ]; then
    az postgres flexible-server firewall-rule delete -g "$AZURE_RESOURCE_GROUP" -n "$POSTGRES_SERVER_NAME" \
      --rule-name "$rule" --yes >/dev/null || true
  fi
}
trap cleanup EXIT

# 1. SPA redirect URIs: the web app's origins, the same list the API's CORS allows.
uris="\"$WEB_APP_URL/\""
for origin in $(echo "${FOLIO_EXTRA_WEB_ORIGINS:-}" | tr ',' ' '); do
  uris="$uris, \"$origin/\""
done
object_id=$(az ad app show --id "$AUTH_CLIENT_ID" --query id -o tsv)
az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers Content-Type=application/json --body "{\"spa\": {\"redirectUris\": [$uris]}}" >/dev/null
echo "app registration: SPA redirect URIs $uris"

# 2. The context key. The deployer's Key Vault Secrets Officer (roles.bicep) may take minutes to apply
# after the first provision, so listing the vault is retried; an existing secret is never replaced
# (the running app and the database hold it).
context_secret=database-context-key
attempt=1
until found=$(az keyvault secret list --vault-name "$KEY_VAULT_NAME" \
    --query "length([?name=='$context_secret'])" -o tsv); do
  if [ "$attempt" -ge "${FOLIO_VAULT_ATTEMPTS:-10}" ]; then
    echo "Key Vault $KEY_VAULT_NAME: cannot list secrets (Key Vault Secrets Officer needed)" >&2
    exit 1
  fi
  echo "Key Vault $KEY_VAULT_NAME not readable yet (role assignment propagating?); retrying in 30 s" >&2
  attempt=$((attempt + 1))
  sleep 30
done
if [ "$found" = "0" ]; then
  keyfile=$(mktemp)  # mode 0600; removed on exit
  head -c 48 /dev/urandom | base64 | tr -d '\n' >"$keyfile"
  # --output none: `secret set` would print the value it stored.
  az keyvault secret set --vault-name "$KEY_VAULT_NAME" --name "$context_secret" --file "$keyfile" \
    --encoding utf-8 --output none
  rm -f "$keyfile"
  keyfile=""
  echo "Key Vault $KEY_VAULT_NAME: created secret $context_secret"
else
  echo "Key Vault $KEY_VAULT_NAME: secret $context_secret exists, kept"
fi

# 3-4. PostgreSQL.
if [ "${POSTGRES_PRIVATE:-false}" = "true" ] && [ -z "${FOLIO_INSIDE_VNET:-}" ]; then
  echo "PostgreSQL is VNet-injected: run FOLIO_INSIDE_VNET=1 bicep/hooks/postprovision.sh from inside the VNet"
  echo "(with this azd environment's values exported: azd env get-values) to create the app role and migrate."
  exit 0
fi
: "${POSTGRES_SERVER_NAME:?}" "${POSTGRES_FQDN:?}" "${POSTGRES_ADMIN_NAME:?}" "${APP_IDENTITY_NAME:?}" "${AZURE_RESOURCE_GROUP:?}"

if [ "${POSTGRES_PRIVATE:-false}" != "true" ]; then
  ip="${FOLIO_DEPLOYER_IP:-$(curl -fsS https://api.ipify.org)}"
  rule="azd-deployer-$(date +%s)"
  az postgres flexible-server firewall-rule create -g "$AZURE_RESOURCE_GROUP" -n "$POSTGRES_SERVER_NAME" \
    --rule-name "$rule" --start-ip-address "$ip" --end-ip-address "$ip" >/dev/null
fi

python="${FOLIO_PYTHON:-$root/.venv/bin/python}"
if [ ! -x "$python" ]; then
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/python" -m pip install --quiet -r "$root/requirements.txt"
  python="$root/.venv/bin/python"
fi

# An Entra access token for Azure Database for PostgreSQL is the administrator's password (~1 hour).
PGPASSWORD=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv)
export PGPASSWORD
user=$("$python" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$POSTGRES_ADMIN_NAME")

"$python" "$root/bicep/hooks/postgres_app_role.py" \
  "postgresql://$user@$POSTGRES_FQDN:5432/postgres?sslmode=require" "$APP_IDENTITY_NAME"

(
  cd "$root"
  # Read back from the vault (created above or by an earlier run) into this subshell only.
  DATABASE_CONTEXT_KEY=$(az keyvault secret show --vault-name "$KEY_VAULT_NAME" --name "$context_secret" \
    --query value -o tsv)
  if [ -z "$DATABASE_CONTEXT_KEY" ]; then
    echo "Key Vault $KEY_VAULT_NAME: secret $context_secret is empty" >&2
    exit 1
  fi
  export DATABASE_CONTEXT_KEY
  DATABASE_ADMIN_URL="postgresql://$user@$POSTGRES_FQDN:5432/folio?sslmode=require" \
  DATABASE_APP_ROLE="$APP_IDENTITY_NAME" EMBEDDING_MODEL=text-embedding-3-small EMBEDDING_DIM=1536 \
    "$python" -m shared.cli migrate
)
