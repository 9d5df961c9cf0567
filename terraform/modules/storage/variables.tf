variable "bucket_prefix" {
  description = "Bucket names are \"<bucket_prefix>-<area>\" (globally unique: the root passes \"<project_id>-<name_prefix>\")."
  type        = string
}

variable "location" {
  description = "Location of the buckets: the functions' region, so GCS traffic to them stays in-region and free."
  type        = string
}

variable "areas" {
  description = "The storage areas of shared/topology.json (uploads, work, results, cache); one bucket each."
  type        = list(string)

  validation {
    condition     = length(var.areas) > 0 && length(distinct(var.areas)) == length(var.areas)
    error_message = "areas must be a non-empty list of distinct names."
  }
}

variable "delete_after_days" {
  description = "Temporary areas: objects are deleted this many days after creation (GCS lifecycle age, whole days). Their soft-deleted copies are not kept either."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for days in values(var.delete_after_days) : days >= 1 && floor(days) == days])
    error_message = "delete_after_days values must be whole numbers of days, at least 1."
  }
}

variable "cors_origins" {
  description = "Browser origins allowed by CORS on the areas of cors_methods (the app's origins)."
  type        = list(string)
  default     = []
}

variable "cors_methods" {
  description = "Per area, the HTTP methods browsers may use cross-origin (e.g. uploads = [\"PUT\"] for signed upload URLs). No CORS rule when cors_origins is empty."
  type        = map(list(string))
  default     = {}
}

variable "force_destroy" {
  description = "Let terraform destroy delete buckets that still hold objects."
  type        = bool
  default     = false
}
