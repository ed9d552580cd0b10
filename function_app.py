"""Composition root: the Functions app and its blueprints. No logic lives here."""

import azure.functions as func

from blueprints import (
    api_billing,
    api_chat,
    api_collections,
    api_documents,
    api_feedback,
    api_health,
    api_insights,
    api_openapi,
    api_passages,
    api_search,
    api_workspace,
    billing_timer,
    blob_events,
    indexer,
    storage_sweep,
    stripe_webhook,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (
    # HTTP API for the web app and API-key callers
    api_health.bp,
    api_openapi.bp,  # GET /api/openapi.json: this API described (shared/openapi.py)
    api_workspace.bp,
    api_collections.bp,
    api_documents.bp,
    api_passages.bp,
    api_search.bp,
    api_chat.bp,
    api_feedback.bp,  # thumbs up/down on answers (shared/feedback.py)
    api_insights.bp,  # owners' insights, and the daily retention drop of question texts
    api_billing.bp,
    # Stripe's webhook (authenticated by its signature) and the metering timer
    stripe_webhook.bp,
    billing_timer.bp,
    # ingestion: Event Grid blob events and the Service Bus indexer
    blob_events.bp,
    indexer.bp,
    # the hourly sweep of upload blobs no live document accounts for
    storage_sweep.bp,
):
    app.register_functions(blueprint)
