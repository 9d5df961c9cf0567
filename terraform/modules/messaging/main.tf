# Topics, the push subscription of every stage (OIDC-authenticated, dead-lettered, retried with
# exponential backoff), the dead-letter subscription that feeds the failure handler, and the pull
# subscriptions the app reads results and progress from.

locals {
  pubsub_agent = var.pubsub_agent_member

  # The shortest time Pub/Sub spends redelivering a failing message: the backoff doubles from the
  # minimum up to the maximum between deliveries.
  retry_window_s = sum([for k in range(var.max_delivery_attempts - 1) :
  min(var.maximum_backoff_seconds, var.minimum_backoff_seconds * pow(2, k))])

  # A push request lasts up to the ack deadline; it must outlive the function's timeout, or Pub/Sub
  # would redeliver a message that is still being worked on. 600 s is Pub/Sub's maximum.
  ack_margin_seconds = var.ack_margin_seconds
  stage_ack_deadlines = {
    for stage, timeout in var.stage_timeouts : stage => min(600, max(10, timeout + local.ack_margin_seconds))
  }
  failure_handler_ack_deadline = min(600, max(10, var.failure_handler_timeout + local.ack_margin_seconds))

  shared_topic_ids = {
    (var.progress_topic) = google_pubsub_topic.progress.id
    (var.results_topic)  = google_pubsub_topic.results.id
  }

  app_subscriptions = var.create_app_subscriptions ? {
    results  = google_pubsub_topic.results.id
    progress = google_pubsub_topic.progress.id
  } : {}
}

# -- topics (named exactly as shared/topology.json: the functions publish by those ids) -----------

resource "google_pubsub_topic" "stage" {
  for_each = var.stage_topics

  name = each.value
}

resource "google_pubsub_topic" "progress" {
  name = var.progress_topic
}

resource "google_pubsub_topic" "results" {
  name = var.results_topic
}

resource "google_pubsub_topic" "dead_letter" {
  name = var.dead_letter_topic
}

# -- the identity Pub/Sub pushes as ----------------------------------------------------------------

# Pub/Sub signs an OIDC token as this account on every push; the functions' Cloud Run services
# accept it because it holds roles/run.invoker on them (root iam.tf) -- and nothing else.
resource "google_service_account" "pusher" {
  account_id   = "${var.name_prefix}-pusher"
  display_name = "Closet pipeline: Pub/Sub push identity"
  description  = "OIDC identity of the push subscriptions; invoker of the stage and failure-handler functions only."
}

# The Pub/Sub service agent mints those OIDC tokens (needed explicitly in projects created before
# April 2021): token creator on the pusher account only.
resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# -- stage subscriptions ---------------------------------------------------------------------------

resource "google_pubsub_subscription" "stage" {
  for_each = var.stage_topics

  name  = "${var.name_prefix}-${replace(each.key, "_", "-")}-push"
  topic = google_pubsub_topic.stage[each.key].id

  ack_deadline_seconds       = local.stage_ack_deadlines[each.key]
  message_retention_duration = "604800s" # 7 days

  push_config {
    push_endpoint = var.stage_endpoints[each.key]

    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = var.stage_endpoints[each.key]
    }
  }

  # After max_delivery_attempts failed deliveries the message goes to the dead-letter topic,
  # whose subscription pushes it to the failure handler.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Exponential backoff between redeliveries of a failed (non-2xx) push.
  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  lifecycle {
    # A delivery that dies keeps its in-progress lease (shared/runtime/outcomes.py) for as long as the
    # function may run; the redeliveries are refused until then, so they must outlast it.
    precondition {
      condition     = local.retry_window_s >= var.stage_timeouts[each.key]
      error_message = "The retries of ${each.key} (${var.max_delivery_attempts} deliveries, ${var.minimum_backoff_seconds}-${var.maximum_backoff_seconds} s backoff: at least ${local.retry_window_s} s) end before its ${var.stage_timeouts[each.key]} s timeout: a dead delivery's lease would dead-letter the photo. Raise max_delivery_attempts or the backoff."
    }
  }

  # Never expire: a quiet month must not delete the pipeline.
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_service_account_iam_member.agent_mints_push_tokens,
  ]
}

# Dead-lettering: the Pub/Sub service agent republishes the failed message to the dead-letter
# topic (publisher on that topic) and acknowledges it on the stage subscription (subscriber on
# each stage subscription). Granted on the topic and subscriptions, not the project.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  for_each = google_pubsub_subscription.stage

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# -- the failure handler's subscription ------------------------------------------------------------

# No dead-letter policy here: this is the end of the line. A message the failure handler keeps
# refusing is retried with backoff and kept up to 7 days (message_retention_duration).
resource "google_pubsub_subscription" "dead_letter" {
  name  = "${var.name_prefix}-dead-letter-push"
  topic = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = local.failure_handler_ack_deadline
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = var.failure_handler_endpoint

    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = var.failure_handler_endpoint
    }
  }

  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.agent_mints_push_tokens]
}

# -- subscribers: a function pushed from its own subscription on a shared topic ---------------------

# The webhook reads the results topic through its own subscription: Pub/Sub's retry policy (minutes
# of backoff, up to max_delivery_attempts) carries a receiver's outage, then the message goes to the
# subscriber's own dead-letter topic, kept 7 days in a pull subscription for the operator to replay.
resource "google_pubsub_topic" "subscriber_dead_letter" {
  for_each = var.subscribers

  name = each.value.dead_letter_topic
}

resource "google_pubsub_subscription" "subscriber_dead_letter" {
  for_each = var.subscribers

  name                       = "${var.name_prefix}-${replace(each.key, "_", "-")}-dead-letter"
  topic                      = google_pubsub_topic.subscriber_dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "subscriber" {
  for_each = var.subscribers

  name  = "${var.name_prefix}-${replace(each.key, "_", "-")}-push"
  topic = local.shared_topic_ids[each.value.topic]

  ack_deadline_seconds       = min(600, max(10, each.value.timeout_seconds + local.ack_margin_seconds))
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = each.value.endpoint

    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = each.value.endpoint
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.subscriber_dead_letter[each.key].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${each.value.minimum_backoff_seconds}s"
    maximum_backoff = "${each.value.maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_subscriber_dead_letters,
    google_service_account_iam_member.agent_mints_push_tokens,
  ]
}

resource "google_pubsub_topic_iam_member" "agent_publishes_subscriber_dead_letters" {
  for_each = var.subscribers

  topic  = google_pubsub_topic.subscriber_dead_letter[each.key].id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_subscriber_dead_letters" {
  for_each = google_pubsub_subscription.subscriber

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# -- the app's pull subscriptions ------------------------------------------------------------------

# The app backend pulls result documents and progress events (README: "How the app gets results").
resource "google_pubsub_subscription" "app" {
  for_each = local.app_subscriptions

  name  = "${var.name_prefix}-app-${each.key}"
  topic = each.value

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "app_pulls" {
  for_each = {
    for pair in setproduct(keys(local.app_subscriptions), var.app_subscriber_members) : "${pair[0]}/${pair[1]}" => {
      subscription = pair[0]
      member       = pair[1]
    }
  }

  subscription = google_pubsub_subscription.app[each.value.subscription].id
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}
