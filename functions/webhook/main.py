"""Cloud Function: webhook. Pushed by its own subscription on the results topic; sends each result
document, signed, to CLOSET_WEBHOOK_URL (shared/runtime/webhook.py). Pub/Sub retries a failure."""

from shared.runtime.entry.subscriber import webhook_function

handle = webhook_function()
