# The Google APIs the pipeline uses. Left enabled on destroy: other workloads may need them.
locals {
  apis = toset(concat(
    [
      "artifactregistry.googleapis.com",     # the functions' container images (gcf-artifacts)
      "cloudbuild.googleapis.com",           # builds each function's image from its zip
      "cloudfunctions.googleapis.com",       # Cloud Functions (2nd gen)
      "cloudresourcemanager.googleapis.com", # data.google_project: the project number of the service agents
      "cloudscheduler.googleapis.com",       # warm-up pings
      "iam.googleapis.com",                  # service accounts
      "iamcredentials.googleapis.com",       # signBlob: V4 signed URLs without key files
      "logging.googleapis.com",              # function and build logs
      "pubsub.googleapis.com",               # topics and push subscriptions between stages
      "run.googleapis.com",                  # the Cloud Run services under each function
      "secretmanager.googleapis.com",        # remove.bg key, Gemini key, webhook secret
      "storage.googleapis.com",              # the area buckets and the function sources
    ],
    var.results_cdn_enabled ? ["compute.googleapis.com"] : [], # load balancer and Cloud CDN
  ))
}

resource "google_project_service" "api" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
