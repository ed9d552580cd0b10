#!/bin/sh
# azd postdeploy (after the code is published): the Event Grid subscription, then the web app's URL.
# An AzureFunction endpoint is validated against the deployed function, so the subscription cannot
# be part of the first provisioning. This deploys the same module main.bicep uses, with
# deployEventSubscription=true (idempotent: later runs change nothing).
set -eu

: "${AZURE_RESOURCE_GROUP:?}" "${EVENT_GRID_TOPIC_NAME:?}" "${STORAGE_ACCOUNT_ID:?}" "${FUNCTION_APP_ID:?}"
: "${FOLIO_LOCATION:?}" "${FOLIO_TAGS:?}" "${WEB_APP_URL:?}"
root=$(cd "$(dirname "$0")/../.." && pwd)

az deployment group create --name folio-eventgrid --resource-group "$AZURE_RESOURCE_GROUP" \
  --template-file "$root/bicep/modules/eventgrid.bicep" \
  --parameters name="$EVENT_GRID_TOPIC_NAME" location="$FOLIO_LOCATION" tags="$FOLIO_TAGS" \
               storageAccountId="$STORAGE_ACCOUNT_ID" functionAppId="$FUNCTION_APP_ID" \
               deployEventSubscription=true --output none
echo "Event Grid: blob events under uploads/ are delivered to on_blob_event"
echo
echo "Folio is deployed. Web app: $WEB_APP_URL"
echo "API: ${API_BASE_URL:-}"
