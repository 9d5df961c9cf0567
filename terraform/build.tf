# How the functions are built. Cloud Functions (2nd gen) hands each source zip to Cloud Build,
# which builds a container image and pushes it to Artifact Registry. By default that runs as the
# Compute Engine default service account, which new projects no longer make an Editor (and which
# does not exist before compute.googleapis.com is enabled), so the first build would fail.
# Builds run as this account instead, holding only what a build needs.

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "Closet pipeline: function builds"
  description  = "Cloud Build identity of the functions: reads their sources, pushes their images, writes build logs."

  depends_on = [time_sleep.apis_ready]
}

# The images, in a repository of our own (instead of the default gcf-artifacts, which keeps every
# image forever): old images are deleted, the newest few of each function kept for rollbacks.
resource "google_artifact_registry_repository" "functions" {
  repository_id = "${var.name_prefix}-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Container images of the closet pipeline's functions (built by Cloud Build)."

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-older-than-30-days"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  # KEEP wins over DELETE: the running image and a few to roll back to always stay.
  cleanup_policies {
    id     = "keep-newest"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.build_images_kept
    }
  }

  depends_on = [time_sleep.apis_ready]
}

locals {
  build_member = "serviceAccount:${google_service_account.build.email}"
}

# Push (and overwrite the cache image) in this repository only.
resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  repository = google_artifact_registry_repository.functions.name
  location   = google_artifact_registry_repository.functions.location
  role       = "roles/artifactregistry.writer"
  member     = local.build_member
}

# Read the function zips, on the source bucket only.
resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.function_source.name
  role   = "roles/storage.objectViewer"
  member = local.build_member
}

# Read the sources Cloud Functions stages for each build. The build does not read our zip from
# function_source: Cloud Functions copies it into its own bucket, gcf-v2-sources-<number>-<region>,
# which it creates at the first deploy (so it cannot be granted on as a bucket before then). Without
# this the first build fails with "Access to bucket gcf-v2-sources-... denied"
# (hashicorp/terraform-provider-google#20571). roles/storage.objectViewer at project level, held back
# by an IAM condition to that one bucket; not roles/run.builder, which would add Artifact Registry,
# logging and storage reads on every bucket of the project (the other two are granted above, narrower).
data "google_project" "deploying" {
  project_id = var.project_id

  depends_on = [time_sleep.apis_ready]
}

resource "google_project_iam_member" "build_reads_staged_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = local.build_member

  condition {
    title       = "staged-function-sources"
    description = "Only the bucket Cloud Functions stages function sources in."
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.deploying.number}-${var.region}\")"
  }
}

# Build logs: Cloud Logging grants writing at project level only (logWriter writes, reads nothing).
resource "google_project_iam_member" "build_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.build_member
}
