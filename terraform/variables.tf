# -- project ------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the pipeline. One pipeline per project: the Pub/Sub topic ids are fixed by shared/topology.json."
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
  description = "Prefix of every bucket, function, service account, subscription and Scheduler job name (not of topics: their ids come from shared/topology.json)."
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
  description = "Lifetime of the signed result URLs the pipeline hands to the app (CLOSET_SIGNED_URL_TTL_S)."
  type        = number
  default     = 3600

  validation {
    condition     = var.signed_url_ttl_seconds >= 60 && var.signed_url_ttl_seconds <= 604800 && floor(var.signed_url_ttl_seconds) == var.signed_url_ttl_seconds
    error_message = "signed_url_ttl_seconds must be a whole number from 60 to 604800 (7 days, the V4 signing limit)."
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

# -- delivery and scaling -----------------------------------------------------------------------

variable "max_delivery_attempts" {
  description = "Pub/Sub deliveries of a message to a stage before it is dead-lettered to the failure handler."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Shortest wait before Pub/Sub redelivers a failed message (exponential backoff starts here)."
  type        = number
  default     = 10

  validation {
    condition     = var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600
    error_message = "retry_minimum_backoff_seconds must be from 0 to 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Longest wait before Pub/Sub redelivers a failed message (exponential backoff stops growing here)."
  type        = number
  default     = 300

  validation {
    condition     = var.retry_maximum_backoff_seconds >= var.retry_minimum_backoff_seconds && var.retry_maximum_backoff_seconds <= 600
    error_message = "retry_maximum_backoff_seconds must be at least retry_minimum_backoff_seconds and at most 600."
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

variable "max_instance_count" {
  description = "Most instances of each function; caps spend and the load on remote providers."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instance_count >= 1 && var.max_instance_count <= 1000 && floor(var.max_instance_count) == var.max_instance_count && var.max_instance_count >= var.min_instance_count
    error_message = "max_instance_count must be a whole number from 1 to 1000, and not below min_instance_count."
  }
}

variable "instance_count_overrides" {
  description = "Per-function min/max instances, keyed by function name from shared/topology.json, e.g. { remove_background = { min = 1 } }."
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

# -- storage ------------------------------------------------------------------------------------

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

variable "build_service_account" {
  description = "Full name (projects/P/serviceAccounts/EMAIL) of the service account Cloud Build uses to build the functions; null uses the project's default build account (README: new projects)."
  type        = string
  default     = null
  nullable    = true

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

# -- results behind Cloud CDN (optional) --------------------------------------------------------

variable "results_cdn_enabled" {
  description = "Serve results through Cloud CDN (backend bucket, URL map, HTTPS load balancer, managed certificate, signed-URL key) instead of short-lived GCS signed URLs. Costs a forwarding rule (~18 USD/month)."
  type        = bool
  default     = false
}

variable "results_cdn_domain" {
  description = "Domain name of the results CDN (a DNS A record to the output results_cdn_ip_address is needed for the managed certificate). Required when results_cdn_enabled."
  type        = string
  default     = ""

  validation {
    condition     = !var.results_cdn_enabled || can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.results_cdn_domain))
    error_message = "results_cdn_domain must be a domain name such as cdn.closet.example.com when results_cdn_enabled is true."
  }
}
