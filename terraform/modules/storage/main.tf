# One bucket per area. All of them: uniform bucket-level access (IAM only, no ACLs) and public
# access prevention enforced (no allUsers/allAuthenticatedUsers grant can ever take effect).
# Access is granted per function and per bucket in the root module's iam.tf.

locals {
  unknown_areas = setsubtract(concat(keys(var.delete_after_days), keys(var.cors_methods)), var.areas)
}

resource "google_storage_bucket" "area" {
  for_each = toset(var.areas)

  name          = "${var.bucket_prefix}-${each.key}"
  location      = var.location
  storage_class = "STANDARD"
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Temporary areas: delete objects once they are old enough.
  dynamic "lifecycle_rule" {
    for_each = contains(keys(var.delete_after_days), each.key) ? [var.delete_after_days[each.key]] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Temporary areas churn: keeping 7 days of soft-deleted copies would bill for data no one wants.
  dynamic "soft_delete_policy" {
    for_each = contains(keys(var.delete_after_days), each.key) ? [0] : []
    content {
      retention_duration_seconds = soft_delete_policy.value
    }
  }

  # Browser access with signed URLs (PUT to uploads, GET of results) from the app's origins.
  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 && contains(keys(var.cors_methods), each.key) ? [var.cors_methods[each.key]] : []
    content {
      origin          = var.cors_origins
      method          = cors.value
      response_header = ["Content-Type", "Content-Length", "Content-MD5", "ETag", "x-goog-content-length-range", "x-goog-generation", "x-goog-if-generation-match"]
      max_age_seconds = 3600
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.unknown_areas) == 0
      error_message = "delete_after_days / cors_methods name areas that are not in var.areas: ${join(", ", local.unknown_areas)}."
    }
  }
}
