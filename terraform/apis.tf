# The Google APIs the pipeline uses. Left enabled on destroy: other workloads may need them.
locals {
  apis = toset(concat(
    [
      "artifactregistry.googleapis.com",     # the functions' container images (build.tf)
      "cloudbuild.googleapis.com",           # builds each function's image from its zip
      "cloudfunctions.googleapis.com",       # Cloud Functions (2nd gen)
      "cloudresourcemanager.googleapis.com", # data.google_project (the staged-sources grant, the budget); README step 1 enables it first
      "serviceusage.googleapis.com",         # enabling the others; README step 1 enables it first
      "cloudscheduler.googleapis.com",       # warm-up pings
      "iam.googleapis.com",                  # service accounts
      "iamcredentials.googleapis.com",       # signBlob: V4 signed URLs without key files
      "logging.googleapis.com",              # function and build logs
      "monitoring.googleapis.com",           # alert policies (monitoring.tf)
      "pubsub.googleapis.com",               # topics and push subscriptions between stages
      "run.googleapis.com",                  # the Cloud Run services under each function
      "secretmanager.googleapis.com",        # remove.bg key, Gemini key, webhook secret, upload-URL secret
      "storage.googleapis.com",              # the area buckets and the function sources
    ],
    var.billing_account == "" ? [] : ["billingbudgets.googleapis.com"], # budget.tf
  ))
  # Not enabled on purpose: compute.googleapis.com. Builds run as our own account (build.tf) and
  # every function as its own, so nothing needs the Compute Engine default service account.
}

resource "google_project_service" "api" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# An API answers 403 SERVICE_DISABLED for a minute or two after it is enabled. Everything that
# calls one depends on this wait, not on google_project_service directly; enabling another API
# later (the budget's) changes the triggers and waits again.
resource "time_sleep" "apis_ready" {
  create_duration = "${var.api_propagation_seconds}s"

  triggers = {
    apis = join(",", sort(local.apis))
  }

  depends_on = [google_project_service.api]
}
