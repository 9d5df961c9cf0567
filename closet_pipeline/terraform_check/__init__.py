"""Offline `terraform validate` and `terraform plan` against the real google provider's schema.

Terraform cannot download providers here (nor in CI), and the real google provider would need
credentials to plan. What catches mistakes in the configuration -- unknown arguments, a block
written as an attribute, a wrong type, a missing required argument -- is the provider's *schema*,
and Terraform core checks the configuration against it itself. So a stand-in provider that serves
the real schema and plans every resource without calling Google is enough:

  jsii_schema     the schema of a given google / google-beta version, read from the jsii assembly
                  that the PyPI package cdktf-cdktf-provider-google(-beta) generates from it
  small_schemas   the few resources of the small hashicorp/random and hashicorp/time providers
                  the configuration uses, written out (their schemas are tiny and stable)
  standin         the provider process: Terraform's plugin protocol (tfplugin6, through the PyPI
                  package `tf`), serving a schema, planning computed values as unknown, applying nothing
  plugins         builds a plugin folder for `terraform init -plugin-dir`, one stand-in per provider
  check           init + validate + plan of a copy of terraform/, with `terraform show -json`

What it does not catch: the providers' own value checks (an enum value, a name pattern) and
anything only the Google APIs refuse.
"""
