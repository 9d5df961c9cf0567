# The pipeline's secrets in Secret Manager, mounted in functions as environment variables
# (secret_environment_variables, version "latest", read when an instance starts).
#
# Third parties' keys are created WITHOUT a value: Terraform never sees them. The operator adds a
# version out of band (README: "Adding secret values"), e.g.
#   printf '%s' "$KEY" | gcloud secrets versions add closet-removebg-api-key --data-file=-
# and such a secret is mounted only when the feature that needs it is switched on, because a
# function cannot deploy with a secret that has no version:
#   removebg-api-key   when background_providers includes "removebg"  -> the background stage
#   gemini-api-key     when gemini_enabled                            -> the expand stage
#   webhook-secret     when webhook_url is set                        -> every function that publishes results
#
# The upload-URL bearer secret is ours, not a third party's: Terraform generates it (its value is
# in the state -- keep the state private), mounts it in the HTTP functions and lets the app
# backend's identities (app_invoker_members) read it, to send `Authorization: Bearer <secret>`.
#   upload-url-secret  always                                         -> upload_url
#
# (local.secrets and local.secret_mounts are in topology.tf; the grants in iam.tf.)
resource "google_secret_manager_secret" "api" {
  for_each = local.secrets

  secret_id = "${var.name_prefix}-${each.key}"

  replication {
    auto {}
  }

  lifecycle {
    precondition {
      condition     = alltrue([for function in each.value.consumers : contains(keys(local.functions), function)])
      error_message = "Secret ${each.key} names a function that shared/topology.json does not define."
    }
  }

  depends_on = [google_project_service.api]
}

resource "random_password" "generated" {
  for_each = local.generated_secrets

  length  = 48
  special = false
}

resource "google_secret_manager_secret_version" "generated" {
  for_each = local.generated_secrets

  secret      = google_secret_manager_secret.api[each.key].id
  secret_data = random_password.generated[each.key].result
}
