# Wiring of the whole pipeline. Its shape (areas, topics, stages, who reads, writes and publishes
# what, memory/cpu/timeout/concurrency) is read from shared/topology.json, the same file the Python
# code reads, so Terraform and the functions cannot disagree. Nothing here names a topic id.
#
#   topology.tf             every local derived from shared/topology.json (functions, grants, secret mounts)
#   apis.tf                 the Google APIs the pipeline needs
#   iam.tf                  one service account per function, and every grant to it (one for_each per kind)
#   secrets.tf              the Secret Manager secrets (values are added out of band)
#   source.tf               the bucket of function zips
#   uploads_notification.tf uploads/ -> the entry stage's topic
#   modules/storage         the area buckets (uploads, work, results, cache)
#   modules/messaging       topics, push subscriptions, dead-lettering, the pusher identity
#   modules/function        one Cloud Function (2nd gen) and its source object
#   modules/warmup          Cloud Scheduler warm-up pings
#   modules/results_cdn     optional Cloud CDN in front of the results bucket

locals {
  bucket_prefix       = "${var.project_id}-${var.name_prefix}"
  functions_build_dir = startswith(var.functions_build_dir, "/") ? var.functions_build_dir : "${path.module}/${var.functions_build_dir}"

  # The remove_background zip carries the model here (closet_pipeline/packaging.py); Cloud Functions unpacks
  # the source into /workspace.
  model_path_in_zip = "models/isnet-general-use-small.onnx"

  # The same non-secret settings for every function: the cache fingerprint that ingest computes
  # covers the background chain, the model and the expand policy, so they must agree everywhere.
  common_environment = merge(
    { for area, bucket in module.storage.bucket_names : "CLOSET_${upper(area)}_BUCKET" => bucket },
    {
      CLOSET_PROJECT_ID            = var.project_id
      CLOSET_BACKGROUND_PROVIDERS  = join(",", var.background_providers)
      CLOSET_MODEL_PATH            = "/workspace/${local.model_path_in_zip}"
      CLOSET_EXPAND_POLICY         = var.expand_policy
      CLOSET_SIGNED_URL_TTL_S      = tostring(var.signed_url_ttl_seconds)
      LOG_EXECUTION_ID             = "true"
    },
    var.webhook_url == "" ? {} : { CLOSET_WEBHOOK_URL = var.webhook_url },
    var.hf_space == "" ? {} : { CLOSET_HF_SPACE = var.hf_space },
    # The status function's CORS answer (shared/http/status.py); unset means any origin.
    length(var.app_origins) == 0 ? {} : { CLOSET_CORS_ORIGINS = join(",", var.app_origins) },
    var.extra_environment,
  )
}

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.api]
}

check "instance_count_overrides_name_functions" {
  assert {
    condition     = alltrue([for name in keys(var.instance_count_overrides) : contains(keys(local.functions), name)])
    error_message = "instance_count_overrides has keys that are not functions of shared/topology.json: ${join(", ", [for name in keys(var.instance_count_overrides) : name if !contains(keys(local.functions), name)])}."
  }
}

# -- buckets: one per area of the topology --------------------------------------------------------

module "storage" {
  source = "./modules/storage"

  bucket_prefix = local.bucket_prefix
  location      = var.region
  areas         = local.topology.areas
  force_destroy = var.force_destroy_buckets

  # Temporary areas: work holds intermediates for a day; cache entries live cache_ttl_hours,
  # rounded up to whole days because GCS lifecycle ages are days.
  delete_after_days = {
    work  = 1
    cache = ceil(var.cache_ttl_hours / 24)
  }

  # Browsers PUT to signed upload URLs and may fetch() signed result URLs.
  cors_origins = var.app_origins
  cors_methods = {
    uploads = ["PUT"]
    results = ["GET", "HEAD"]
  }

  depends_on = [google_project_service.api]
}

# -- functions: every stage, the failure handler and the HTTP functions --------------------------

module "functions" {
  source   = "./modules/function"
  for_each = local.functions

  project_id  = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description = each.value.description

  source_bucket         = google_storage_bucket.function_source.name
  zip_path              = "${local.functions_build_dir}/${each.key}.zip"
  object_prefix         = each.key
  runtime               = "python311"
  entry_point           = "handle"
  build_service_account = var.build_service_account

  memory             = each.value.memory
  cpu                = each.value.cpu
  timeout_seconds    = each.value.timeout_seconds
  concurrency        = each.value.concurrency
  min_instance_count = coalesce(try(var.instance_count_overrides[each.key].min, null), var.min_instance_count)
  max_instance_count = coalesce(try(var.instance_count_overrides[each.key].max, null), var.max_instance_count)

  # Pub/Sub push is internal traffic; only the HTTP functions are reachable from outside, and
  # even they only by the identities in app_invoker_members (iam.tf).
  ingress_settings      = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
  service_account_email = google_service_account.function[each.key].email

  environment = local.common_environment
  secret_environment = {
    for mount in local.secret_mounts : mount.env => google_secret_manager_secret.api[mount.secret].secret_id
    if mount.function == each.key
  }

  labels = { function = replace(each.key, "_", "-") }

  # Cloud Functions checks at deploy time that the runtime identity can read its secrets, and
  # that they have a version.
  depends_on = [
    google_project_service.api,
    google_secret_manager_secret_iam_member.function_secrets,
    google_secret_manager_secret_version.generated,
  ]
}

# -- messaging: topics, push subscriptions, dead-lettering ----------------------------------------

module "messaging" {
  source = "./modules/messaging"

  project_number = data.google_project.this.number
  name_prefix    = var.name_prefix

  stage_topics      = { for name, stage in local.stages : name => stage.topic }
  progress_topic    = local.topology.topics.progress
  results_topic     = local.topology.topics.results
  dead_letter_topic = local.topology.topics.deadLetter

  stage_endpoints = { for name in keys(local.stages) : name => module.functions[name].uri }
  stage_timeouts  = { for name, stage in local.stages : name => stage.timeoutSeconds }

  failure_handler_endpoint = module.functions[local.topology.failureHandler.name].uri
  failure_handler_timeout  = local.topology.failureHandler.timeoutSeconds

  max_delivery_attempts   = var.max_delivery_attempts
  minimum_backoff_seconds = var.retry_minimum_backoff_seconds
  maximum_backoff_seconds = var.retry_maximum_backoff_seconds

  create_app_subscriptions = var.create_app_subscriptions
  app_subscriber_members   = var.app_subscriber_members

  depends_on = [google_project_service.api]
}

# -- warm-up pings (the free alternative to min_instance_count; README) ---------------------------

module "warmup" {
  source = "./modules/warmup"

  name_prefix      = var.name_prefix
  region           = var.region
  interval_minutes = var.warmup_interval_minutes
  topic_ids        = module.messaging.stage_topic_ids

  depends_on = [google_project_service.api]
}

# -- optional: results behind Cloud CDN instead of GCS signed URLs -------------------------------

module "results_cdn" {
  source = "./modules/results_cdn"
  count  = var.results_cdn_enabled ? 1 : 0

  name_prefix    = var.name_prefix
  project_number = data.google_project.this.number
  bucket_name    = module.storage.bucket_names["results"]
  domain         = var.results_cdn_domain
  signed_url_ttl = var.signed_url_ttl_seconds

  depends_on = [google_project_service.api]
}
