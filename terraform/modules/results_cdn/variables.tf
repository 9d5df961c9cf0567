variable "name_prefix" {
  description = "Prefix of the load balancer, CDN and secret names."
  type        = string
}

variable "project_number" {
  description = "Number of the project, to name the Cloud CDN fill service agent (service-<number>@cloud-cdn-fill.iam.gserviceaccount.com)."
  type        = string
}

variable "bucket_name" {
  description = "The results bucket served through the CDN."
  type        = string
}

variable "domain" {
  description = "Domain of the CDN endpoint; its DNS A record must point at the output ip_address for the managed certificate to become active."
  type        = string
}

variable "signed_url_ttl" {
  description = "Seconds a signed CDN URL's response may be cached (signed_url_cache_max_age_sec)."
  type        = number
  default     = 3600
}
