variable "project_id" {
  description = "Project of the function (and of its secrets)."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Function name (also its Cloud Run service's name): lowercase letters, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name))
    error_message = "name must be 2-63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "description" {
  description = "What the function does, shown in the console."
  type        = string
  default     = ""
}

variable "source_bucket" {
  description = "Bucket the source zip is uploaded to."
  type        = string
}

variable "zip_path" {
  description = "Local path of the function's zip, built by `make package` (python -m closet_pipeline.packaging)."
  type        = string
}

variable "object_prefix" {
  description = "The uploaded object is \"<object_prefix>-<md5 of the zip>.zip\": a new name, hence a redeploy, only when the zip changed."
  type        = string
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "entry_point" {
  description = "Name of the function in main.py that handles requests."
  type        = string
  default     = "handle"
}

variable "build_service_account" {
  description = "Full name of the service account Cloud Build uses (projects/P/serviceAccounts/EMAIL). Required: the project default (the Compute Engine default account) may lack the rights, or not exist."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "docker_repository" {
  description = "Artifact Registry repository the image is pushed to (projects/P/locations/R/repositories/REPO), with cleanup policies; instead of gcf-artifacts, which keeps every image."
  type        = string
}

variable "memory" {
  description = "Memory of an instance, e.g. \"512Mi\" or \"2Gi\" (from shared/topology.json)."
  type        = string
}

variable "cpu" {
  description = "vCPUs of an instance, e.g. \"1\" or \"2\" (from shared/topology.json)."
  type        = string
}

variable "timeout_seconds" {
  description = "Request timeout in seconds (from shared/topology.json)."
  type        = number

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be from 1 to 3600."
  }
}

variable "concurrency" {
  description = "Requests one instance serves at once (max_instance_request_concurrency, from shared/topology.json)."
  type        = number

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be from 1 to 1000."
  }
}

variable "min_instance_count" {
  description = "Instances kept running when idle (billed while idle)."
  type        = number
  default     = 0
}

variable "max_instance_count" {
  description = "Most instances at once (shared/topology.json maxInstances unless overridden)."
  type        = number
}

variable "ingress_settings" {
  description = "ALLOW_INTERNAL_ONLY for functions only Pub/Sub pushes to; ALLOW_ALL for functions the app calls (IAM still restricts who)."
  type        = string

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "service_account_email" {
  description = "The function's own runtime service account."
  type        = string
}

variable "environment" {
  description = "Plain environment variables (CLOSET_* settings)."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager: variable name => secret id (version \"latest\", resolved when an instance starts)."
  type        = map(string)
  default     = {}
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}
