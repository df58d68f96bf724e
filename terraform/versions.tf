terraform {
  # 1.6+: `check` blocks, optional object attributes with defaults, validation that
  # refers to the variable itself. Tested with terraform fmt 1.11.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    # google_project_service_identity (the Pub/Sub service agent's email before first use)
    # is only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.14"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state in a GCS bucket you create once (terraform/README.md, "State bucket");
  # `make plan` / `make deploy` pass -backend-config=bucket=$(STATE_BUCKET).
  backend "gcs" {
    prefix = "quantsentinel/state"
  }
}
