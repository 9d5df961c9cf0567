# Warm-up: every interval_minutes, each stage's topic gets a message with attribute warmup="true".
# Its push starts (or keeps) one instance of the stage, which acknowledges it without doing any
# work, so a real photo rarely meets a cold start. The paid alternative is min_instance_count
# (README: "Warm-up: Scheduler vs min_instance_count").
resource "google_cloud_scheduler_job" "warmup" {
  for_each = var.interval_minutes > 0 ? var.topic_ids : {}

  name        = "${var.name_prefix}-warmup-${replace(each.key, "_", "-")}"
  description = "Keeps the ${each.key} stage warm: a warmup=\"true\" message every ${var.interval_minutes} min."
  region      = var.region
  schedule    = "*/${var.interval_minutes} * * * *"
  time_zone   = var.time_zone

  pubsub_target {
    topic_name = each.value
    data       = base64encode(jsonencode({ warmup = true }))
    attributes = {
      warmup = "true"
    }
  }
}
