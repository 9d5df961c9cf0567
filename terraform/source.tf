# The bucket of function sources. `make package` (python -m closet_pipeline.packaging --out build/functions)
# builds one deterministic zip per function; modules/function uploads each as
# "<function>-<md5>.zip", so only a function whose zip changed is rebuilt and redeployed.
resource "google_storage_bucket" "function_source" {
  name     = "${local.bucket_prefix}-function-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Only build inputs live here, and Terraform re-uploads them on the next apply.
  force_destroy = true

  soft_delete_policy {
    retention_duration_seconds = 0
  }

  depends_on = [time_sleep.apis_ready]
}
