# terraform init -backend-config=examples/backend.gcs.hcl
# The state bucket exists before Terraform does (README: State): create it once with versioning,
# so that a bad apply can be rolled back to the previous state.
bucket = "my-closet-project-tfstate"
prefix = "closet-pipeline/closet" # one prefix per environment (name_prefix) sharing the bucket
