# Google's service agents that act on our resources, created before anything is granted to them.
# Their emails are taken from the resources that create them, never built from the project number:
# on a new project the agent may not exist yet, and a grant to it would fail.

# Pub/Sub's agent dead-letters messages and mints the pushes' OIDC tokens (modules/messaging).
# google_project_service_identity exists in google-beta only (6.x).
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [time_sleep.apis_ready]
}

# A service agent that was just created is not visible to IAM at once: a grant to it made in the
# same second fails with "Service account ... does not exist". Every grant to an agent goes through
# this wait (its member comes out of the triggers, so nothing reaches the agent before it ends).
resource "time_sleep" "pubsub_agent_ready" {
  create_duration = "${var.service_agent_propagation_seconds}s"

  triggers = {
    member = google_project_service_identity.pubsub.member
  }
}

# Cloud Storage's agent publishes the uploads notifications (uploads_notification.tf). Reading
# it through the Storage API creates it if it does not exist yet (the API's
# projects.serviceAccount.get), which is what this data source calls.
data "google_storage_project_service_account" "gcs_agent" {
  project = var.project_id

  depends_on = [time_sleep.apis_ready]
}

resource "time_sleep" "gcs_agent_ready" {
  create_duration = "${var.service_agent_propagation_seconds}s"

  triggers = {
    member = "serviceAccount:${data.google_storage_project_service_account.gcs_agent.email_address}"
  }
}
