terraform {
  # 1.9+: variable validations may refer to other variables (results_cdn_domain, backoffs).
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge(var.labels, {
    app        = "closet-pipeline"
    managed-by = "terraform"
  })
}
