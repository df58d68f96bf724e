# Copy to env/<project>.tfvars, fill in, and pass as VARS=terraform/env/<project>.tfvars.
# Every variable is described (with its validation) in terraform/variables.tf; only
# project_id is required, the rest shows the defaults worth a decision.

project_id = "my-quantsentinel-prod" # an existing project with billing enabled
region     = "asia-south1"           # Mumbai: close to NSE and the brokers' APIs

# Where chain_poll fetches chains: nse (website JSON) or upstox (API v2, token in the
# upstox-access-token secret, refreshed daily).
chain_source = "nse"

# Secrets of features you do not use are created but bound to no function, so they need
# no value. With chain_source = "nse" and email through SMTP:
disabled_secrets = ["upstox-access-token", "ses-access-key-id", "ses-secret-access-key"]

notify = {
  email_backend  = "smtp"
  smtp_host      = "smtp.example.com"
  smtp_port      = 587
  smtp_security  = "starttls"
  smtp_username  = "alerts@example.com"
  email_sender   = "alerts@example.com"
  operator_email = "oncall@example.com" # receives notify.dead
}

# Alert policies notify these addresses (and any existing channel ids).
alert_emails                = ["oncall@example.com"]
alert_notification_channels = []

# Who may call the HTTP APIs (POST /decision, /check, /killswitch, /train, /rollback).
# Services still authorise each caller per tenant.
api_invokers = {
  risk_check = ["group:quantsentinel-operators@example.com"]
  retrain    = ["group:quantsentinel-operators@example.com"]
}

# Database: REGIONAL keeps a standby in a second zone (about twice the price of ZONAL).
db_tier                = "db-custom-1-3840"
db_availability_type   = "REGIONAL"
db_deletion_protection = true
enable_mlflow_tracking = false

# Keep one decide instance warm through the session to skip its cold start (billed idle).
function_overrides = {
  # decide = { min_instances = 1 }
}

# Jobs (from schedules/*.yaml) to create paused.
paused_schedules = []
