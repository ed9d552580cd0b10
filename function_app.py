"""Composition root: the Functions app and its blueprints. No logic lives here."""

import azure.functions as func

from blueprints import api_billing, billing_timer, stripe_webhook
from blueprints import api_passages
from blueprints import api_chat
from blueprints import api_collections, api_documents, api_health, api_search, api_workspace, blob_events, indexer

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (api_health.bp, api_workspace.bp, api_collections.bp, api_documents.bp, api_search.bp,
                  blob_events.bp, indexer.bp):
    app.register_functions(blueprint)
app.register_functions(api_billing.bp)
app.register_functions(stripe_webhook.bp)
app.register_functions(billing_timer.bp)
app.register_functions(api_passages.bp)
app.register_functions(api_chat.bp)
