# Alert policies: what a platform team is paged for. Each sends to var.notification_channels.
#
#   stage-backlog        the oldest unacknowledged message of a stage's subscription is older than
#                        alert_oldest_unacked_seconds: that stage stopped keeping up (one condition per stage)
#   dead-lettered        a stage dead-lettered messages: jobs ended RETRIES_EXHAUSTED
#   dead-letter-backlog  the failure handler's own subscription is not drained: failed jobs are
#                        not even reported as failed
#   function-5xx         the functions answer 5xx (crashes, timeouts, out of memory)
#   function-429         the functions answer 429 for a sustained time: maxInstances is too low
#                        for the load, and messages are spending their delivery attempts
#   webhook-dead-letters (when webhook_url is set) the webhook's push subscription dead-letters
#                        deliveries: the receiver kept refusing them

locals {
  # The webhook's own push subscription on the results topic (modules/messaging, `subscribers`).
  webhook_subscription_name = "${var.name_prefix}-webhook-push"

  quoted_stage_subscriptions = join(", ", [for name in values(module.messaging.stage_subscription_names) : "\"${name}\""])
  quoted_services            = join(", ", [for name in values(local.function_names) : "\"${name}\""])

  alert_policies = merge(
    {
      stage-backlog = {
        display_name = "${var.name_prefix}: a pipeline stage is falling behind"
        documentation = join("\n", [
          "The oldest unacknowledged message of a stage subscription is older than ${var.alert_oldest_unacked_seconds} s.",
          "Look at that stage's function: errors in its logs, instances at maxInstances (429s), a remote provider that is slow.",
        ])
        conditions = [
          for stage, subscription in module.messaging.stage_subscription_names : {
            display_name = "${stage}: oldest unacked message > ${var.alert_oldest_unacked_seconds} s"
            filter       = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
            threshold    = var.alert_oldest_unacked_seconds
            duration     = "300s"
            alignment    = "60s"
            aligner      = "ALIGN_MAX"
            reducer      = "REDUCE_NONE"
          }
        ]
      }
      dead-lettered = {
        display_name  = "${var.name_prefix}: jobs failed after every retry (dead-lettered)"
        documentation = "A stage subscription forwarded messages to the dead-letter topic after max_delivery_attempts (${local.max_delivery_attempts}) deliveries: those jobs ended with RETRIES_EXHAUSTED. Check the stage's logs for the failing deliveries (5xx or 429)."
        conditions = [{
          display_name = "messages dead-lettered by a stage subscription"
          filter       = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = one_of(${local.quoted_stage_subscriptions}) AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
          threshold    = 0
          duration     = "0s"
          alignment    = "300s"
          aligner      = "ALIGN_DELTA"
          reducer      = "REDUCE_SUM"
        }]
      }
      dead-letter-backlog = {
        display_name  = "${var.name_prefix}: the failure handler is not draining dead letters"
        documentation = "Messages wait on the dead-letter subscription for over 15 minutes: the dead_letter function is failing, so failed jobs are not reported to the app."
        conditions = [{
          display_name = "dead-letter subscription backlog"
          filter       = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${module.messaging.dead_letter_subscription_name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
          threshold    = 0
          duration     = "900s"
          alignment    = "60s"
          aligner      = "ALIGN_MAX"
          reducer      = "REDUCE_NONE"
        }]
      }
      function-5xx = {
        display_name  = "${var.name_prefix}: functions answer 5xx"
        documentation = "More than ${var.alert_5xx_per_minute} 5xx per minute over 5 minutes from the pipeline's functions: crashes, timeouts or out-of-memory kills. Pub/Sub retries them, so dead letters may follow."
        conditions = [{
          display_name = "5xx responses per second"
          filter       = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = one_of(${local.quoted_services}) AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
          threshold    = var.alert_5xx_per_minute / 60
          duration     = "0s"
          alignment    = "300s"
          aligner      = "ALIGN_RATE"
          reducer      = "REDUCE_SUM"
        }]
      }
      function-429 = {
        display_name  = "${var.name_prefix}: functions at their instance limit (429)"
        documentation = "More than ${var.alert_429_per_minute} 429 per minute over 10 minutes: a function is at maxInstances for longer than a burst. Each 429 spends one of a message's ${local.max_delivery_attempts} delivery attempts; raise maxInstances (shared/topology.json or instance_count_overrides). README: Capacity."
        conditions = [{
          display_name = "429 responses per second"
          filter       = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = one_of(${local.quoted_services}) AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code = \"429\""
          threshold    = var.alert_429_per_minute / 60
          duration     = "0s"
          alignment    = "600s"
          aligner      = "ALIGN_RATE"
          reducer      = "REDUCE_SUM"
        }]
      }
    },
    var.webhook_url == "" ? {} : {
      webhook-dead-letters = {
        display_name  = "${var.name_prefix}: webhook deliveries dead-lettered"
        documentation = "The webhook receiver (${var.webhook_url}) refused deliveries until they were dead-lettered; the result documents are still on the results topic."
        conditions = [{
          display_name = "messages dead-lettered by the webhook subscription"
          filter       = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${local.webhook_subscription_name}\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
          threshold    = 0
          duration     = "0s"
          alignment    = "300s"
          aligner      = "ALIGN_DELTA"
          reducer      = "REDUCE_SUM"
        }]
      }
    },
  )
}

resource "google_monitoring_alert_policy" "pipeline" {
  for_each = local.alert_policies

  display_name          = each.value.display_name
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = { app = "closet-pipeline", env = var.name_prefix }

  dynamic "conditions" {
    for_each = each.value.conditions
    content {
      display_name = conditions.value.display_name
      condition_threshold {
        filter          = conditions.value.filter
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value.threshold
        duration        = conditions.value.duration
        aggregations {
          alignment_period     = conditions.value.alignment
          per_series_aligner   = conditions.value.aligner
          cross_series_reducer = conditions.value.reducer
        }
      }
    }
  }

  documentation {
    content   = each.value.documentation
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [time_sleep.apis_ready]
}
