# One Cloud Function (2nd gen): its source zip, uploaded under a content-addressed name, and the
# function built from it. Who may invoke it and what it may touch is granted in the root iam.tf.

locals {
  zip_exists = fileexists(var.zip_path)
  zip_md5    = local.zip_exists ? filemd5(var.zip_path) : "missing"
}

resource "google_storage_bucket_object" "source" {
  name         = "${var.object_prefix}-${local.zip_md5}.zip"
  bucket       = var.source_bucket
  source       = var.zip_path
  content_type = "application/zip"

  lifecycle {
    precondition {
      condition     = local.zip_exists
      error_message = "No ${var.zip_path}: build the function zips first with `make package` (python -m closet_pipeline.packaging --out build/functions)."
    }
  }
}

resource "google_cloudfunctions2_function" "this" {
  name        = var.name
  project     = var.project_id
  location    = var.region
  description = var.description
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build_service_account
    docker_repository = var.docker_repository

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    timeout_seconds                  = var.timeout_seconds
    max_instance_request_concurrency = var.concurrency
    min_instance_count               = var.min_instance_count
    max_instance_count               = var.max_instance_count
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = var.service_account_email
    environment_variables            = var.environment

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}
