# Optional (billing_account set): a monthly budget on this project, notifying at 50 %, 90 % and
# 100 % of actual spend and at 100 % of forecast spend, to the same channels as the alerts and to
# the billing account's admins. A budget notifies; it does not stop spending.

data "google_project" "this" {
  count = var.billing_account == "" ? 0 : 1

  project_id = var.project_id

  depends_on = [time_sleep.apis_ready]
}

resource "google_billing_budget" "project" {
  count    = var.billing_account == "" ? 0 : 1
  provider = google.billing

  billing_account = var.billing_account
  display_name    = "${var.name_prefix}: closet pipeline (${var.project_id})"

  budget_filter {
    projects        = ["projects/${data.google_project.this[0].number}"]
    calendar_period = "MONTH"
  }

  amount {
    specified_amount {
      currency_code = "USD" # must be the billing account's currency
      units         = tostring(var.monthly_budget_usd)
    }
  }

  dynamic "threshold_rules" {
    for_each = [0.5, 0.9, 1.0]
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = var.notification_channels
    disable_default_iam_recipients   = false
  }

  depends_on = [time_sleep.apis_ready]
}
