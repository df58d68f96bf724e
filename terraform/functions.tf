# The six Cloud Functions (gen2), each with its own service account and only its grants.

locals {
  # Sizing: topology's values, then the per-project overrides.
  function_specs = {
    for name, f in local.functions : name => merge(f, {
      for k, v in try(var.function_overrides[name], {}) : k => v if v != null
    })
  }

  # GCP names use hyphens (Cloud Run service names cannot hold '_').
  function_ids = { for name in keys(local.functions) : name => "${local.prefix}-${replace(name, "_", "-")}" }

  # The deterministic run.app URL of each function's Cloud Run service. It is known before
  # the function exists, so it can be the function's own QS_AUTH_AUDIENCE and the OIDC
  # audience of its push subscriptions and scheduler jobs without a dependency cycle.
  function_audiences = {
    for name, id in local.function_ids : name => "https://${id}-${data.google_project.this.number}.${var.region}.run.app"
  }

  buckets = {
    raw     = module.bucket["raw"].name
    models  = module.bucket["models"].name
    history = module.bucket["history"].name
  }

  invokers = concat([
    google_service_account.push.email,
    google_service_account.scheduler.email,
  ], var.extra_invokers)

  # Environment every function gets (shared/config.py Settings).
  common_env = {
    QS_ENVIRONMENT       = "production"
    QS_PROJECT_ID        = var.project_id
    QS_LOG_LEVEL         = var.log_level
    QS_AUTH_MODE         = "google"
    QS_ALLOWED_INVOKERS  = jsonencode(local.invokers)
    QS_CLOUDSQL_INSTANCE = google_sql_database_instance.main.connection_name
    QS_DB_IP_TYPE        = "private"
    QS_DB_USER           = local.app_role
    QS_DB_NAME           = google_sql_database.app.name
    QS_DEAD_LETTER_TOPIC = local.dead_letter_topic
    QS_RAW_BUCKET        = module.bucket["raw"].name
    QS_MODELS_BUCKET     = module.bucket["models"].name
  }

  function_env = {
    chain_poll = {
      QS_CHAIN_SOURCE = var.chain_source
    }
    news_ingest = {}
    decide      = {}
    risk_check  = {}
    retrain = {
      QS_HISTORY_URI          = "gs://${module.bucket["history"].name}"
      QS_MLFLOW_ARTIFACT_ROOT = "gs://${module.bucket["models"].name}/mlflow"
    }
    notify = { for k, v in {
      QS_EMAIL_BACKEND  = var.notify.email_backend
      QS_SMTP_HOST      = var.notify.smtp_host
      QS_SMTP_PORT      = tostring(var.notify.smtp_port)
      QS_SMTP_SECURITY  = var.notify.smtp_security
      QS_SMTP_USERNAME  = var.notify.smtp_username
      QS_EMAIL_SENDER   = var.notify.email_sender
      QS_OPERATOR_EMAIL = var.notify.operator_email
      QS_SES_REGION     = var.notify.ses_region
    } : k => v if v != "" }
  }

  # Which secret each function gets as which variable: locals.secrets, minus the
  # disabled ones and MLflow's when tracking is off.
  bound_secrets = {
    for name in keys(local.functions) : name => {
      for id, s in local.secrets : s.env => google_secret_manager_secret.app[id].secret_id
      if contains(s.functions, name) && !contains(var.disabled_secrets, id) && (id != "mlflow-tracking-uri" || var.enable_mlflow_tracking)
    }
  }
}

module "function" {
  source   = "./modules/function"
  for_each = local.function_specs

  project_id    = var.project_id
  region        = var.region
  name          = local.function_ids[each.key]
  function_key  = each.key
  description   = "Quantsentinel ${each.key} (${each.value.source})"
  labels        = local.labels
  entry_point   = each.value.entry_point
  memory_mb     = each.value.memory_mb
  timeout_s     = each.value.timeout_s
  max_instances = each.value.max_instances
  min_instances = each.value.min_instances
  ingress       = each.value.http_api ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"

  source_zip        = "${path.module}/${var.bundle_dir}/${each.key}.zip"
  source_bucket     = module.bucket["sources"].name
  build_sa_id       = google_service_account.builder.id
  docker_repository = google_artifact_registry_repository.functions.id
  vpc_connector     = google_vpc_access_connector.main.id

  env = merge(local.common_env, local.function_env[each.key], {
    QS_FUNCTION_NAME = each.key
    QS_AUTH_AUDIENCE = local.function_audiences[each.key]
  })
  secret_env = local.bound_secrets[each.key]

  project_roles  = ["roles/cloudsql.client"] # the Cloud SQL connector; password auth as qs_app
  publish_topics = concat([for t in each.value.publishes : module.topic[t].id], [google_pubsub_topic.dead_letter.id])
  bucket_roles   = { for key, role in each.value.buckets : local.buckets[key] => role }

  invoker_members = concat(
    ["serviceAccount:${google_service_account.push.email}", "serviceAccount:${google_service_account.scheduler.email}"],
    lookup(var.api_invokers, each.key, []),
  )

  depends_on = [
    google_project_service.enabled,
    google_secret_manager_secret_version.db_app_password,
    google_secret_manager_secret_version.mlflow_tracking_uri,
    google_artifact_registry_repository_iam_member.builder_writer,
    google_storage_bucket_iam_member.builder_sources,
    google_project_iam_member.builder,
  ]
}

# --- identities shared by all functions ---------------------------------------------

resource "google_service_account" "push" {
  account_id   = "${local.prefix}-pubsub-push"
  display_name = "Quantsentinel Pub/Sub push (OIDC identity of every push subscription)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "scheduler" {
  account_id   = "${local.prefix}-scheduler"
  display_name = "Quantsentinel Cloud Scheduler (OIDC identity of every job)"
  depends_on   = [google_project_service.enabled]
}

# Cloud Build runs each function's build as this account instead of the default compute
# account: it reads the source bundles, writes the image, and writes build logs.
resource "google_service_account" "builder" {
  account_id   = "${local.prefix}-function-builder"
  display_name = "Quantsentinel function builds (Cloud Build)"
  depends_on   = [google_project_service.enabled]
}

resource "google_project_iam_member" "builder" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_storage_bucket_iam_member" "builder_sources" {
  bucket = module.bucket["sources"].name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption at rest. The images hold only the open-source code and its public dependencies, rebuilt from the bundles at every deploy.
  location      = var.region
  repository_id = "${local.prefix}-functions"
  description   = "Container images Cloud Build makes of the functions"
  format        = "DOCKER"

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_artifact_registry_repository_iam_member" "builder_writer" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.builder.email}"
}
