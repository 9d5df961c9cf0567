# The pipeline's secrets in Secret Manager, mounted in functions as environment variables
# (secret_environment_variables, version "latest", read when an instance starts).
#
# Third parties' keys are created WITHOUT a value: Terraform never sees them. The operator adds a
# version out of band (README: "Adding secret values"), e.g.
#   printf '%s' "$KEY" | gcloud secrets versions add closet-removebg-api-key --data-file=-
# and such a secret is mounted only when the feature that needs it is switched on:
#   removebg-api-key   when background_providers includes "removebg"  -> the background stage
#   gemini-api-key     when gemini_enabled                            -> the expand stage
#   webhook-secret     when webhook_url is set                        -> the webhook function (its own results subscription)
#
# A function cannot deploy with a secret that has no version, and it would find out halfway
# through an apply. So a switched-on feature's secret version is read at PLAN time
# (data.google_secret_manager_secret_version.required below): no version, no plan.
#
# The upload-URL bearer secret is ours, not a third party's: Terraform generates it (its value is
# in the state -- keep the state private), mounts it in the HTTP functions and lets the app
# backend's identities (app_invoker_members) read it, to send `Authorization: Bearer <secret>`.
#   upload-url-secret  always                                         -> upload_url, status
#
# (local.secrets and local.secret_mounts are in topology.tf; the grants in iam.tf.)
resource "google_secret_manager_secret" "api" {
  for_each = local.secrets

  secret_id = local.secret_ids[each.key]

  replication {
    auto {}
  }

  lifecycle {
    precondition {
      condition     = alltrue([for function in each.value.consumers : contains(keys(local.functions), function)])
      error_message = "Secret ${each.key} names a function that shared/topology.json does not define."
    }
  }

  depends_on = [time_sleep.apis_ready]
}

# The latest version of each third party's secret a switched-on feature mounts, read when
# planning. It names the secret by id, not through the resource above, so Terraform cannot defer
# the read to apply time: on a first apply with the feature already on, the secret does not exist
# yet and the plan stops there too (switch features on after the first apply; README).
# Metadata only (fetch_secret_data = false): the key itself never enters the plan or the state.
data "google_secret_manager_secret_version" "required" {
  for_each = local.required_secret_versions

  project           = var.project_id
  secret            = local.secret_ids[each.key]
  version           = "latest"
  fetch_secret_data = false

  lifecycle {
    postcondition {
      condition     = self.enabled == true
      error_message = "Secret ${local.secret_ids[each.key]} has no enabled latest version, and ${each.value.feature} mounts it. Add the value first: printf '%s' \"$VALUE\" | gcloud secrets versions add ${local.secret_ids[each.key]} --project=${var.project_id} --data-file=-  (or switch the feature off)."
    }
  }
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
