# Optional (root: results_cdn_enabled): the results bucket behind Cloud CDN, on an HTTPS load
# balancer with a Google-managed certificate. The bucket stays private (public access prevention
# enforced): the CDN reads it as its fill service agent, and only requests with a URL signed by
# the CDN key are served. The key is kept in Secret Manager for whoever signs result URLs.

resource "random_id" "url_signing_key" {
  byte_length = 16 # Cloud CDN keys are 128-bit, base64url-encoded
}

resource "google_compute_backend_bucket" "results" {
  name        = "${var.name_prefix}-results"
  description = "Results bucket, served through Cloud CDN with signed URLs."
  bucket_name = var.bucket_name
  enable_cdn  = true

  cdn_policy {
    cache_mode                   = "CACHE_ALL_STATIC"
    default_ttl                  = 3600
    max_ttl                      = 86400
    client_ttl                   = 3600
    signed_url_cache_max_age_sec = var.signed_url_ttl
  }
}

resource "google_compute_backend_bucket_signed_url_key" "results" {
  name           = "${var.name_prefix}-results-key"
  key_value      = random_id.url_signing_key.b64_url
  backend_bucket = google_compute_backend_bucket.results.name
}

# The fill agent exists once the bucket has a signed URL key; read access on this bucket only.
resource "google_storage_bucket_iam_member" "cdn_fill_reads_results" {
  bucket = var.bucket_name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:service-${var.project_number}@cloud-cdn-fill.iam.gserviceaccount.com"

  depends_on = [google_compute_backend_bucket_signed_url_key.results]
}

# The key name and value, for signing CDN URLs (grant roles/secretmanager.secretAccessor on this
# secret to the signer; README).
resource "google_secret_manager_secret" "url_signing_key" {
  secret_id = "${var.name_prefix}-results-cdn-key"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "url_signing_key" {
  secret = google_secret_manager_secret.url_signing_key.id
  secret_data = jsonencode({
    key_name  = google_compute_backend_bucket_signed_url_key.results.name
    key_value = random_id.url_signing_key.b64_url
  })
}

resource "google_compute_global_address" "results" {
  name = "${var.name_prefix}-results-cdn"
}

resource "google_compute_managed_ssl_certificate" "results" {
  name = "${var.name_prefix}-results-cdn"

  managed {
    domains = [var.domain]
  }
}

resource "google_compute_url_map" "results" {
  name            = "${var.name_prefix}-results-cdn"
  default_service = google_compute_backend_bucket.results.id
}

resource "google_compute_target_https_proxy" "results" {
  name             = "${var.name_prefix}-results-cdn"
  url_map          = google_compute_url_map.results.id
  ssl_certificates = [google_compute_managed_ssl_certificate.results.id]
}

resource "google_compute_global_forwarding_rule" "results" {
  name                  = "${var.name_prefix}-results-cdn"
  target                = google_compute_target_https_proxy.results.id
  ip_address            = google_compute_global_address.results.address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
