# -- project ------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the pipeline. Every name carries name_prefix (README: Two environments in one project)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, the buckets and the Scheduler jobs (one region keeps GCS-to-function traffic free)."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1 (not a multi-region)."
  }
}

variable "name_prefix" {
  description = "Prefix of every bucket, function, service account, topic, subscription, secret, repository, alert and Scheduler job name, and the env label: two environments can share a project."
  type        = string
  default     = "closet"

  validation {
    # 12 characters at most: "<prefix>-remove-background" must fit a 30-character service account id.
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-12 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels on every resource that takes labels (app and managed-by are always set)."
  type        = map(string)
  default     = {}
}

# -- the app ------------------------------------------------------------------------------------

variable "app_origins" {
  description = "Browser origins of the app, allowed by CORS to PUT to signed upload URLs (uploads bucket), GET results (results bucket) and read the status function (CLOSET_CORS_ORIGINS), e.g. [\"https://closet.example.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for origin in var.app_origins : can(regex("^(https://[^/*\\s]+|http://localhost(:[0-9]+)?)$", origin))])
    error_message = "Each app origin must be https://host[:port] (or http://localhost[:port] for development), without a path or a wildcard."
  }
}

variable "app_invoker_members" {
  description = "IAM members allowed to call the HTTP functions (upload_url, status) and to read their bearer secret (the app backend's identity), e.g. [\"serviceAccount:backend@my-project.iam.gserviceaccount.com\"]. Never public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.app_invoker_members : can(regex("^(serviceAccount|user|group|principal|principalSet):.+$", member))])
    error_message = "Each member must be serviceAccount:, user:, group:, principal: or principalSet: (allUsers, allAuthenticatedUsers and domain: are refused: the function is not public)."
  }
}

variable "app_subscriber_members" {
  description = "IAM members allowed to pull the app's results and progress subscriptions (usually the same backend identity as app_invoker_members)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.app_subscriber_members : can(regex("^(serviceAccount|user|group|principal|principalSet):.+$", member))])
    error_message = "Each member must be serviceAccount:, user:, group:, principal: or principalSet: (allUsers and allAuthenticatedUsers are refused)."
  }
}

variable "create_app_subscriptions" {
  description = "Create pull subscriptions on the results and progress topics for the app backend (outputs app_subscriptions)."
  type        = bool
  default     = true
}

variable "webhook_url" {
  description = "HTTPS endpoint that receives each signed result document (CLOSET_WEBHOOK_URL); empty for none. Setting it also mounts the webhook-secret secret, which must have a version first (README)."
  type        = string
  default     = ""

  validation {
    condition     = var.webhook_url == "" || can(regex("^https://", var.webhook_url))
    error_message = "webhook_url must be empty or an https:// URL."
  }
}

variable "signed_url_ttl_seconds" {
  description = "Lifetime of the signed result URLs the pipeline hands to the app (CLOSET_SIGNED_URL_TTL_S); null: shared/topology.json's links.resultSeconds. Links are signed per hand-out (status answer, webhook delivery), so this covers one hand-out, not Pub/Sub's retries."
  type        = number
  default     = null

  validation {
    condition     = var.signed_url_ttl_seconds == null || (try(var.signed_url_ttl_seconds >= 60 && var.signed_url_ttl_seconds <= 604800 && floor(var.signed_url_ttl_seconds) == var.signed_url_ttl_seconds, false))
    error_message = "signed_url_ttl_seconds must be null or a whole number from 60 to 604800 (7 days, the V4 signing limit)."
  }
}

# -- pipeline behaviour -------------------------------------------------------------------------

variable "background_providers" {
  description = "Ordered background-removal fallback chain (CLOSET_BACKGROUND_PROVIDERS): local, removebg, hf-space. Including removebg mounts the remove.bg key secret, which must have a version first (README)."
  type        = list(string)
  default     = ["local"]

  validation {
    condition     = length(var.background_providers) > 0 && alltrue([for provider in var.background_providers : contains(["local", "removebg", "hf-space"], provider)]) && length(distinct(var.background_providers)) == length(var.background_providers)
    error_message = "background_providers must be a non-empty list of distinct values among local, removebg and hf-space."
  }
}

variable "hf_space" {
  description = "The Gradio Space running rembg, owner/name or URL (CLOSET_HF_SPACE), for the hf-space provider; empty for none."
  type        = string
  default     = ""
}

variable "expand_policy" {
  description = "When expand generates the garment's missing parts (CLOSET_EXPAND_POLICY): auto, always or never."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "always", "never"], var.expand_policy)
    error_message = "expand_policy must be auto, always or never."
  }
}

variable "gemini_enabled" {
  description = "Mount the Gemini API key secret in the expand function (CLOSET_GEMINI_API_KEY). Add a secret version first (README); without the key expand is skipped."
  type        = bool
  default     = false
}

variable "extra_environment" {
  description = "More CLOSET_* settings for every function (see the settings table in the main README), e.g. { CLOSET_OUTPUT_FORMAT = \"webp\" }. Secrets do not belong here."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.extra_environment) : can(regex("^CLOSET_[A-Z0-9_]+$", key)) && !contains(["CLOSET_REMOVEBG_API_KEY", "CLOSET_GEMINI_API_KEY", "CLOSET_WEBHOOK_SECRET", "CLOSET_HF_TOKEN", "CLOSET_OPENAI_API_KEY", "CLOSET_UPLOAD_URL_SECRET"], key)])
    error_message = "extra_environment keys must be CLOSET_* setting names, and never a secret (keys and secrets come from Secret Manager)."
  }
}

# -- delivery and scaling (README: Capacity: a burst of 200 uploads) ---------------------------

variable "max_delivery_attempts" {
  description = "Pub/Sub deliveries of a message to a stage before it is dead-lettered to the failure handler; null: shared/topology.json's delivery.maxDeliveryAttempts (what the local topology runs with). A push the instance limit answers with 429 counts as one, so this and the backoffs must outlast a burst (README: Capacity)."
  type        = number
  default     = null

  validation {
    condition     = var.max_delivery_attempts == null || try(var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts, false)
    error_message = "max_delivery_attempts must be null or a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Shortest wait before Pub/Sub redelivers a failed message (exponential backoff starts here); null: shared/topology.json's delivery.minimumBackoffSeconds."
  type        = number
  default     = null

  validation {
    condition     = var.retry_minimum_backoff_seconds == null || try(var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600, false)
    error_message = "retry_minimum_backoff_seconds must be null or from 0 to 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Longest wait before Pub/Sub redelivers a failed message (exponential backoff stops growing here); null: shared/topology.json's delivery.maximumBackoffSeconds."
  type        = number
  default     = null

  validation {
    condition     = var.retry_maximum_backoff_seconds == null || try(var.retry_maximum_backoff_seconds >= coalesce(var.retry_minimum_backoff_seconds, 0) && var.retry_maximum_backoff_seconds <= 600, false)
    error_message = "retry_maximum_backoff_seconds must be null, or at least retry_minimum_backoff_seconds and at most 600."
  }
}

variable "min_instance_count" {
  description = "Instances every function keeps running when idle. 0 (scale to zero) is the cheap default; 1 removes cold starts at a price (README: warm-up vs min instances)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instance_count >= 0 && var.min_instance_count <= 100 && floor(var.min_instance_count) == var.min_instance_count
    error_message = "min_instance_count must be a whole number from 0 to 100."
  }
}

variable "instance_count_overrides" {
  description = "Per-function min/max instances, keyed by function name from shared/topology.json, e.g. { remove_background = { min = 1, max = 40 } }. The default max is the function's maxInstances in shared/topology.json."
  type = map(object({
    min = optional(number)
    max = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for name, counts in var.instance_count_overrides : coalesce(counts.min, 0) >= 0 && coalesce(counts.max, 1) >= 1 && coalesce(counts.max, 1000) >= coalesce(counts.min, 0)])
    error_message = "Each override needs min >= 0, max >= 1 and max >= min."
  }
}

variable "warmup_interval_minutes" {
  description = "Every how many minutes Cloud Scheduler pings each stage (a message with attribute warmup=\"true\") to keep one instance warm; 0 disables the jobs. Schedule is the cron \"*/N * * * *\"."
  type        = number
  default     = 5

  validation {
    condition     = var.warmup_interval_minutes >= 0 && var.warmup_interval_minutes <= 59 && floor(var.warmup_interval_minutes) == var.warmup_interval_minutes
    error_message = "warmup_interval_minutes must be a whole number from 0 (disabled) to 59."
  }
}

# -- storage: how long each area keeps objects (README: Retention) -----------------------------

variable "uploads_retention_days" {
  description = "Days an uploaded photo is kept. Raw phone photos carry EXIF metadata (GPS position, device) and ingest has made its own copy within minutes; 7 days leaves time to reprocess a failed job."
  type        = number
  default     = 7

  validation {
    condition     = var.uploads_retention_days >= 1 && var.uploads_retention_days <= 365 && floor(var.uploads_retention_days) == var.uploads_retention_days
    error_message = "uploads_retention_days must be a whole number of days from 1 to 365."
  }
}

variable "results_retention_days" {
  description = "Days result images are kept. The app receives them as signed URLs valid signed_url_ttl_seconds and copies what it keeps; cached results point at these objects, so this must cover cache_ttl_hours."
  type        = number
  default     = 30

  validation {
    condition     = var.results_retention_days >= 1 && var.results_retention_days <= 3650 && floor(var.results_retention_days) == var.results_retention_days && var.results_retention_days * 24 >= var.cache_ttl_hours
    error_message = "results_retention_days must be a whole number of days from 1 to 3650, and cover cache_ttl_hours (cached entries point at result objects)."
  }
}

variable "cache_ttl_hours" {
  description = "How long cached results live, in hours. GCS lifecycle ages are whole days, so it is rounded UP to days (1-24 h -> 1 day, 25-48 h -> 2 days), and GCS deletes asynchronously, usually within a day after that."
  type        = number
  default     = 24

  validation {
    condition     = var.cache_ttl_hours >= 1 && var.cache_ttl_hours <= 8760 && floor(var.cache_ttl_hours) == var.cache_ttl_hours
    error_message = "cache_ttl_hours must be a whole number of hours from 1 to 8760 (one year)."
  }
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete buckets that still hold objects (test projects only)."
  type        = bool
  default     = false
}

# -- source and build ---------------------------------------------------------------------------

variable "functions_build_dir" {
  description = "Folder of the function zips that `make package` builds (python -m closet_pipeline.packaging), relative to this terraform/ folder or absolute."
  type        = string
  default     = "../build/functions"
}

variable "build_images_kept" {
  description = "Function container images kept per function in the Artifact Registry repository (the newest ones; older ones are deleted after 30 days). Rolling back needs an image, so at least 2."
  type        = number
  default     = 5

  validation {
    condition     = var.build_images_kept >= 2 && var.build_images_kept <= 100 && floor(var.build_images_kept) == var.build_images_kept
    error_message = "build_images_kept must be a whole number from 2 to 100."
  }
}

variable "api_propagation_seconds" {
  description = "Seconds to wait after enabling the Google APIs before creating anything that uses them: a freshly enabled API answers 403 SERVICE_DISABLED for a minute or two."
  type        = number
  default     = 90

  validation {
    condition     = var.api_propagation_seconds >= 0 && var.api_propagation_seconds <= 600 && floor(var.api_propagation_seconds) == var.api_propagation_seconds
    error_message = "api_propagation_seconds must be a whole number from 0 to 600."
  }
}

variable "service_agent_propagation_seconds" {
  description = "Wait after a Google service agent (Pub/Sub's, Cloud Storage's) is created and before anything is granted to it: a new agent is not visible to IAM at once."
  type        = number
  default     = 60

  validation {
    condition     = var.service_agent_propagation_seconds >= 0 && var.service_agent_propagation_seconds <= 600
    error_message = "service_agent_propagation_seconds must be from 0 to 600."
  }
}

# -- operations: alerts and budget (README: Operations) -----------------------------------------

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/N) every alert policy and the budget send to. Empty: the alerts still open incidents in the console, but nobody is told."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for channel in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "Each notification channel must be a full name: projects/PROJECT/notificationChannels/ID."
  }
}

variable "alert_oldest_unacked_seconds" {
  description = "Alert when the oldest unacknowledged message of a stage subscription is older than this: a stage that stopped keeping up (a burst of 200 drains in about a minute; README: Capacity)."
  type        = number
  default     = 600

  validation {
    condition     = var.alert_oldest_unacked_seconds >= 60
    error_message = "alert_oldest_unacked_seconds must be at least 60."
  }
}

variable "alert_5xx_per_minute" {
  description = "Alert when the functions together answer more 5xx per minute than this, over 5 minutes (crashes, timeouts, out of memory)."
  type        = number
  default     = 1

  validation {
    condition     = var.alert_5xx_per_minute > 0
    error_message = "alert_5xx_per_minute must be above 0."
  }
}

variable "alert_429_per_minute" {
  description = "Alert when the functions together answer more 429 (instance limit reached) per minute than this, over 10 minutes. Bursts cause some 429s by design: Pub/Sub retries them; a sustained rate means maxInstances is too low."
  type        = number
  default     = 60

  validation {
    condition     = var.alert_429_per_minute > 0
    error_message = "alert_429_per_minute must be above 0."
  }
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for the optional monthly budget on this project; empty for no budget. The identity running Terraform needs Billing Account Costs Manager on it."
  type        = string
  default     = ""

  validation {
    condition     = var.billing_account == "" || can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_account))
    error_message = "billing_account must be empty or a billing account id such as 012345-6789AB-CDEF01."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly budget of this project in USD when billing_account is set: notifications at 50 %, 90 % and 100 % of actual spend and at 100 % of forecast spend."
  type        = number
  default     = 50

  validation {
    condition     = var.monthly_budget_usd >= 1 && floor(var.monthly_budget_usd) == var.monthly_budget_usd
    error_message = "monthly_budget_usd must be a whole number of dollars, at least 1."
  }
}
