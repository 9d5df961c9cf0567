# Every optional feature switched on: what `make test` plans besides the defaults
# (tests/test_terraform_plan.py). Before applying it for real, the three third-party secrets
# need a version (README: Adding secret values) -- the plan stops otherwise.

project_id  = "closet-staging"
region      = "europe-west1"
name_prefix = "closet-stg"
labels      = { team = "wardrobe" }

app_origins            = ["https://closet.example.com", "http://localhost:5173"]
app_invoker_members    = ["serviceAccount:closet-backend@closet-staging.iam.gserviceaccount.com"]
app_subscriber_members = ["serviceAccount:closet-backend@closet-staging.iam.gserviceaccount.com"]

background_providers = ["removebg", "local", "hf-space"]
hf_space             = "owner/rembg-space"
gemini_enabled       = true
expand_policy        = "always"
webhook_url          = "https://api.closet.example.com/hooks/cloth"
extra_environment    = { CLOSET_OUTPUT_FORMAT = "webp" }

max_delivery_attempts         = 12
retry_minimum_backoff_seconds = 10
retry_maximum_backoff_seconds = 120
min_instance_count            = 0
instance_count_overrides      = { remove_background = { min = 1, max = 40 } }
warmup_interval_minutes       = 10

uploads_retention_days = 3
results_retention_days = 60
cache_ttl_hours        = 72
force_destroy_buckets  = true
build_images_kept      = 3

notification_channels = ["projects/closet-staging/notificationChannels/1234567890"]
alert_5xx_per_minute  = 2
alert_429_per_minute  = 120
billing_account       = "012345-6789AB-CDEF01"
monthly_budget_usd    = 25
