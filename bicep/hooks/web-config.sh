#!/bin/sh
# azd postbuild of the web service: writes dist/config.json, the web app's runtime configuration
# (frontend/src/config.ts): the API's own origin and the Entra app registration, so the one build
# signs users in with MSAL and calls the function app directly with bearer tokens.
set -eu

: "${API_BASE_URL:?}" "${AUTH_CLIENT_ID:?}"
dist="${1:-dist}"
mkdir -p "$dist"
cat > "$dist/config.json" <<JSON
{
  "apiBase": "$API_BASE_URL",
  "auth": "entra",
  "entra": {
    "clientId": "$AUTH_CLIENT_ID",
    "authority": "https://login.microsoftonline.com/organizations",
    "apiScope": "api://$AUTH_CLIENT_ID/access_as_user",
    "knownAuthorities": []
  }
}
JSON
echo "wrote $dist/config.json (API $API_BASE_URL)"
