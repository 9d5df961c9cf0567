terraform {
  # 1.9+: variable validations may refer to other variables (backoffs, retention vs cache TTL).
  required_version = ">= 1.9"

  # Exact versions: `make test` validates and plans this configuration offline against these
  # very schemas (closet_pipeline/terraform_check: google and google-beta from the PyPI packages
  # cdktf-cdktf-provider-google(-beta)==16.12.1, random and time written out). Move a pin only
  # together with the schema the check serves.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    # Only for google_project_service_identity (service_agents.tf), which google 6.x has in beta only.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.13.1"
    }
  }

  # Partial configuration: the bucket and prefix come from `terraform init -backend-config=FILE`
  # (examples/backend.gcs.hcl), so one configuration serves every environment (README: State).
  backend "gcs" {}
}

locals {
  default_labels = merge(var.labels, {
    app        = "closet-pipeline"
    managed-by = "terraform"
    env        = var.name_prefix
  })
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = local.default_labels
}

provider "google-beta" {
  project        = var.project_id
  region         = var.region
  default_labels = local.default_labels
}

# The Billing Budgets API wants a quota project on every call; only the budget uses this alias,
# so no other call is billed or checked against the project's quota differently.
provider "google" {
  alias                 = "billing"
  project               = var.project_id
  region                = var.region
  billing_project       = var.project_id
  user_project_override = true
}
