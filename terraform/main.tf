# Wiring of the whole pipeline. Its shape (areas, topics, stages, who reads, writes and publishes
# what, memory/cpu/timeout/concurrency) is read from shared/topology.json, the same file the Python
# code reads, so Terraform and the functions cannot disagree. Nothing here names a topic id.
#
#   versions.tf             pinned providers, the partial gcs backend
#   topology.tf             every local derived from shared/topology.json (functions, grants, secret mounts)
#   apis.tf                 the Google APIs the pipeline needs, and the wait after enabling them
#   service_agents.tf       the Pub/Sub and Cloud Storage service agents, created before any grant
#   build.tf                the build service account and the images' Artifact Registry repository
#   iam.tf                  one service account per function, and every grant to it (one for_each per kind)
#   secrets.tf              the Secret Manager secrets (values are added out of band, checked at plan)
#   source.tf               the bucket of function zips
#   uploads_notification.tf uploads/ -> the entry stage's topic
#   monitoring.tf           alert policies; budget.tf the optional billing budget
#   modules/storage         the area buckets (uploads, work, results, cache) and their retention
#   modules/messaging       topics, push subscriptions, dead-lettering, the pusher identity
#   modules/function        one Cloud Function (2nd gen) and its source object
#   modules/warmup          Cloud Scheduler warm-up pings

locals {
  bucket_prefix = "${var.project_id}-${var.name_prefix}"

  # Name of each function (and of its Cloud Run service): the prefix keeps environments apart.
  function_names = { for name in keys(local.functions) : name => "${var.name_prefix}-${replace(name, "_", "-")}" }


  functions_build_dir = startswith(var.functions_build_dir, "/") ? var.functions_build_dir : "${path.module}/${var.functions_build_dir}"

  # The remove_background zip carries the optimised model here, and nothing else of it
  # (closet_pipeline/packaging.py); Cloud Functions unpacks the source into /workspace.
  model_path_in_zip = "models/isnet.ort-optimised.onnx"

  # The same non-secret settings for every function: the cache fingerprint that ingest computes
  # covers the background chain, the model and the expand policy, so they must agree everywhere.
  common_environment = merge(
    { for area, bucket in module.storage.bucket_names : "CLOSET_${upper(area)}_BUCKET" => bucket },
    {
      CLOSET_PROJECT_ID           = var.project_id
      CLOSET_BACKGROUND_PROVIDERS = join(",", var.background_providers)
      CLOSET_MODEL_PATH           = "/workspace/${local.model_path_in_zip}"
      CLOSET_EXPAND_POLICY        = var.expand_policy
      CLOSET_SIGNED_URL_TTL_S     = tostring(local.link_lifetime_seconds)
      CLOSET_TOPIC_PREFIX         = local.topic_prefix
      LOG_EXECUTION_ID            = "true"
    },
    var.webhook_url == "" ? {} : { CLOSET_WEBHOOK_URL = var.webhook_url },
    var.hf_space == "" ? {} : { CLOSET_HF_SPACE = var.hf_space },
    # The status function's CORS answer (shared/http/status.py); unset means any origin.
    length(var.app_origins) == 0 ? {} : { CLOSET_CORS_ORIGINS = join(",", var.app_origins) },
    var.extra_environment,
  )
}

check "enabled_by_names_a_switch" {
  assert {
    condition     = alltrue([for subscriber in try(local.topology.subscribers, []) : contains(keys(local.switches), subscriber.enabledBy) if try(subscriber.enabledBy, null) != null])
    error_message = "A function of shared/topology.json has an enabledBy that is not in local.switches (topology.tf)."
  }
}

# Links are signed for each hand-out (a status answer, a webhook delivery), never once for all of
# Pub/Sub's retries (about 16 h for the webhook): each delivery's links must outlive the delivery itself.
check "links_outlive_a_webhook_delivery" {
  assert {
    condition     = alltrue([for name, subscriber in local.subscribers : local.link_lifetime_seconds > subscriber.timeoutSeconds + local.topology.delivery.ackMarginSeconds])
    error_message = "The links' lifetime (${local.link_lifetime_seconds} s) is shorter than one webhook delivery: the receiver would get links that expire while it is being called."
  }
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

  # Every area is deleted after a while, each for its reason (README: Retention):
  #   uploads  raw phone photos with their EXIF (GPS position): gone after uploads_retention_days
  #   work     intermediates and job state: a job is over in minutes, a day is plenty
  #   results  the app copies what it keeps through short-lived signed URLs
  #   cache    cache_ttl_hours, rounded up to whole days (GCS lifecycle ages are days)
  delete_after_days = {
    uploads = var.uploads_retention_days
    work    = 1
    results = var.results_retention_days
    cache   = ceil(var.cache_ttl_hours / 24)
  }

  # Browsers PUT to signed upload URLs and may fetch() signed result URLs.
  cors_origins = var.app_origins
  cors_methods = {
    uploads = ["PUT"]
    results = ["GET", "HEAD"]
  }

  depends_on = [time_sleep.apis_ready]
}

# -- functions: every stage, the failure handler and the HTTP functions --------------------------

module "functions" {
  source   = "./modules/function"
  for_each = local.functions

  project_id  = var.project_id
  region      = var.region
  name        = local.function_names[each.key]
  description = each.value.description

  source_bucket         = google_storage_bucket.function_source.name
  zip_path              = "${local.functions_build_dir}/${each.key}.zip"
  object_prefix         = each.key
  runtime               = local.topology.runtime # the local topology runs the same Python (closet_pipeline/function_envs.py)
  entry_point           = each.value.entry_point
  build_service_account = google_service_account.build.id
  docker_repository     = google_artifact_registry_repository.functions.id

  memory             = each.value.memory
  cpu                = each.value.cpu
  timeout_seconds    = each.value.timeout_seconds
  concurrency        = each.value.concurrency
  min_instance_count = coalesce(try(var.instance_count_overrides[each.key].min, null), var.min_instance_count)
  max_instance_count = coalesce(try(var.instance_count_overrides[each.key].max, null), each.value.max_instances)

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
  # that they have a version (third parties' versions were checked at plan time, secrets.tf); the
  # build needs its account's grants in place.
  depends_on = [
    time_sleep.apis_ready,
    google_secret_manager_secret_iam_member.function_secrets,
    google_secret_manager_secret_version.generated,
    data.google_secret_manager_secret_version.required,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_storage_bucket_iam_member.build_reads_sources,
    google_project_iam_member.build_reads_staged_sources,
    google_project_iam_member.build_writes_logs,
  ]
}

# -- messaging: topics, push subscriptions, dead-lettering ----------------------------------------

module "messaging" {
  source = "./modules/messaging"

  # Through the wait after the agent's creation (service_agents.tf): no grant reaches it earlier.
  pubsub_agent_member = time_sleep.pubsub_agent_ready.triggers["member"]
  name_prefix         = var.name_prefix

  stage_topics      = { for name, stage in local.stages : name => stage.topic }
  progress_topic    = local.topology.topics.progress
  results_topic     = local.topology.topics.results
  dead_letter_topic = local.topology.topics.deadLetter

  stage_endpoints = { for name in keys(local.stages) : name => module.functions[name].uri }
  stage_timeouts  = { for name, stage in local.stages : name => stage.timeoutSeconds }

  failure_handler_endpoint = module.functions[local.topology.failureHandler.name].uri
  failure_handler_timeout  = local.topology.failureHandler.timeoutSeconds

  subscribers = {
    for name, subscriber in local.subscribers : name => {
      topic                   = local.topic_of[subscriber.topic]
      dead_letter_topic       = local.topic_of[subscriber.deadLetterTopic]
      endpoint                = module.functions[name].uri
      timeout_seconds         = subscriber.timeoutSeconds
      max_delivery_attempts   = subscriber.maxDeliveryAttempts
      minimum_backoff_seconds = subscriber.minimumBackoffSeconds
      maximum_backoff_seconds = subscriber.maximumBackoffSeconds
    }
  }

  max_delivery_attempts   = local.max_delivery_attempts
  minimum_backoff_seconds = local.retry_minimum_backoff_seconds
  maximum_backoff_seconds = local.retry_maximum_backoff_seconds
  ack_margin_seconds      = local.topology.delivery.ackMarginSeconds

  create_app_subscriptions = var.create_app_subscriptions
  app_subscriber_members   = var.app_subscriber_members

  depends_on = [time_sleep.apis_ready]
}

# -- warm-up pings (the free alternative to min_instance_count; README) ---------------------------

module "warmup" {
  source = "./modules/warmup"

  name_prefix      = var.name_prefix
  region           = var.region
  interval_minutes = var.warmup_interval_minutes
  topic_ids        = module.messaging.stage_topic_ids

  depends_on = [time_sleep.apis_ready]
}
