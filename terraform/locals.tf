# The deployment's shape, mirrored from the code. tests/deploy/test_consistency.py parses
# this file and fails when it differs from shared/topology.py (functions, sizing,
# subscriptions, retry and dead-letter policy), shared/contracts.py (topics),
# shared/config.py (secrets) or schedules/*.yaml (which terraform reads directly, below).
# Run `python -m deploy check` for the same report without pytest.

locals {
  prefix = var.name_prefix

  # The functions' database role (shared/config.py db_user; created in SQL, database.tf).
  app_role = "qs_app"

  labels = merge(var.labels, {
    app        = "quantsentinel"
    managed-by = "terraform"
  })

  # shared/topology.py FUNCTIONS. `publishes` and `buckets` are least-privilege grants:
  # the topics whose contract the function's code publishes, and the buckets it touches.
  # Every function may also publish to the dead-letter topic (shared/runtime.py Rejections).
  # `http_api`: the function serves authenticated HTTP routes besides events and
  # schedules, so its ingress must admit callers outside the project.
  functions = {
    chain_poll = {
      source        = "functions/chain_poll"
      entry_point   = "entry"
      memory_mb     = 1024
      timeout_s     = 60
      max_instances = 10
      min_instances = 0
      http_api      = false
      publishes     = ["chain.snapshot"]
      buckets       = { raw = "roles/storage.objectUser" }
    }
    news_ingest = {
      source        = "functions/news_ingest"
      entry_point   = "entry"
      memory_mb     = 512
      timeout_s     = 120
      max_instances = 10
      min_instances = 0
      http_api      = false
      publishes     = ["news.event"]
      buckets       = { models = "roles/storage.objectViewer" }
    }
    decide = {
      source        = "functions/decide"
      entry_point   = "entry"
      memory_mb     = 1024
      timeout_s     = 120
      max_instances = 10
      min_instances = 0
      http_api      = true
      publishes     = ["decision.proposed"]
      buckets       = { models = "roles/storage.objectViewer" }
    }
    risk_check = {
      source        = "functions/risk_check"
      entry_point   = "entry"
      memory_mb     = 512
      timeout_s     = 60
      max_instances = 10
      min_instances = 0
      http_api      = true
      publishes     = ["signal.approved", "signal.blocked", "killswitch.tripped", "killswitch.reset"]
      buckets       = {}
    }
    retrain = {
      source        = "functions/retrain"
      entry_point   = "entry"
      memory_mb     = 4096
      timeout_s     = 900
      max_instances = 2
      min_instances = 0
      http_api      = true
      publishes     = ["model.promoted", "model.rejected", "retrain.failed"]
      buckets       = { models = "roles/storage.objectUser", history = "roles/storage.objectViewer" }
    }
    notify = {
      source        = "functions/notify"
      entry_point   = "entry"
      memory_mb     = 512
      timeout_s     = 60
      max_instances = 10
      min_instances = 0
      http_api      = false
      publishes     = ["notify.dead"]
      buckets       = {}
    }
  }

  # shared/contracts.py TOPICS, without local.probe (the local cloud's canary).
  topics = [
    "chain.snapshot",
    "decision.proposed",
    "killswitch.reset",
    "killswitch.tripped",
    "model.promoted",
    "model.rejected",
    "news.event",
    "notify.dead",
    "retrain.failed",
    "signal.approved",
    "signal.blocked",
  ]

  # shared/topology.py DEAD_LETTER_TOPIC, and the operators' pull subscription on it
  # (local/cloud.py OPERATOR_DLQ_SUBSCRIPTION).
  dead_letter_topic        = "qs.dead-letter"
  dead_letter_subscription = "qs.dead-letter--operator"

  # shared/topology.py DEFAULT_RETRY, applied to every push subscription.
  retry_policy = {
    minimum_backoff_s     = 10
    maximum_backoff_s     = 600
    max_delivery_attempts = 5
  }

  # One push subscription per (topic, consuming function): shared.topology.subscription_id.
  subscriptions = {
    "chain.snapshot--decide"        = { topic = "chain.snapshot", function = "decide" }
    "decision.proposed--risk_check" = { topic = "decision.proposed", function = "risk_check" }
    "signal.approved--notify"       = { topic = "signal.approved", function = "notify" }
    "signal.blocked--notify"        = { topic = "signal.blocked", function = "notify" }
    "killswitch.tripped--notify"    = { topic = "killswitch.tripped", function = "notify" }
    "killswitch.reset--notify"      = { topic = "killswitch.reset", function = "notify" }
    "model.promoted--notify"        = { topic = "model.promoted", function = "notify" }
    "model.rejected--notify"        = { topic = "model.rejected", function = "notify" }
    "retrain.failed--notify"        = { topic = "retrain.failed", function = "notify" }
    "notify.dead--notify"           = { topic = "notify.dead", function = "notify" }
  }

  # The SecretStr settings of shared/config.py that a deployed function reads, as Secret
  # Manager secrets exposed as environment variables, each bound only to the functions
  # whose code reads it. `managed`: terraform generates the value; the others are
  # populated by an operator (terraform/README.md, "Secrets").
  secrets = {
    "db-app-password" = {
      env       = "QS_DB_PASSWORD"
      functions = ["chain_poll", "news_ingest", "decide", "risk_check", "retrain", "notify"]
      managed   = true
    }
    "mlflow-tracking-uri" = {
      env       = "QS_MLFLOW_TRACKING_URI"
      functions = ["retrain"]
      managed   = true
    }
    "upstox-access-token" = {
      env       = "QS_UPSTOX_ACCESS_TOKEN"
      functions = ["chain_poll"]
      managed   = false
    }
    "telegram-bot-token" = {
      env       = "QS_TELEGRAM_BOT_TOKEN"
      functions = ["notify"]
      managed   = false
    }
    "smtp-password" = {
      env       = "QS_SMTP_PASSWORD"
      functions = ["notify"]
      managed   = false
    }
    "webhook-signing-key" = {
      env       = "QS_WEBHOOK_SIGNING_KEY"
      functions = ["notify"]
      managed   = false
    }
    # Read by boto3 (not shared/config.py) when notify's email_backend is ses.
    "ses-access-key-id" = {
      env       = "AWS_ACCESS_KEY_ID"
      functions = ["notify"]
      managed   = false
    }
    "ses-secret-access-key" = {
      env       = "AWS_SECRET_ACCESS_KEY"
      functions = ["notify"]
      managed   = false
    }
  }

  # Cloud Scheduler jobs: one per schedules/*.yaml, the same files the local scheduler
  # reads (shared/schedules.py). Defaults repeat the Schedule model's.
  schedule_dir   = "${path.module}/../schedules"
  schedule_files = fileset(local.schedule_dir, "*.yaml")
  schedule_docs  = [for f in sort(local.schedule_files) : yamldecode(file("${local.schedule_dir}/${f}"))]
  schedules      = { for doc in local.schedule_docs : doc.name => doc }
}
