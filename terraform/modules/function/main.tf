# One Cloud Function (gen2) with its own service account, its source bundle, and exactly
# the grants it needs: its secrets, its topics, its buckets, its invokers.

locals {
  # Smaller functions keep the platform's default CPU share for their memory tier.
  cpu = var.memory_mb >= 4096 ? "2" : (var.memory_mb >= 2048 ? "1" : null)
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "Quantsentinel ${var.function_key} (runtime identity)"
}

# The bundle, named by its content hash: a new bundle is a new object, which makes the
# function redeploy; an unchanged bundle changes nothing.
resource "google_storage_bucket_object" "source" {
  bucket       = var.source_bucket
  name         = "${var.function_key}/${filesha256(var.source_zip)}.zip"
  source       = var.source_zip
  content_type = "application/zip"
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each = var.secret_env

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this.email}"
}

resource "google_project_iam_member" "roles" {
  for_each = toset(var.project_roles)

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.this.email}"
}

resource "google_pubsub_topic_iam_member" "publish" {
  for_each = toset(var.publish_topics)

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.this.email}"
}

resource "google_storage_bucket_iam_member" "buckets" {
  for_each = var.bucket_roles

  bucket = each.key
  role   = each.value
  member = "serviceAccount:${google_service_account.this.email}"
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:ALLOW_ALL is set only for decide, risk_check and retrain, whose HTTP APIs serve tenants and operators outside the project; invocation still needs roles/run.invoker (never allUsers, see invoker_members) and every request a Google-signed ID token the function verifies. The others are ALLOW_INTERNAL_ONLY.
  project     = var.project_id
  name        = var.name
  location    = var.region
  description = var.description
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build_sa_id
    docker_repository = var.docker_repository

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "${var.memory_mb}Mi"
    available_cpu                    = local.cpu
    timeout_seconds                  = var.timeout_s
    max_instance_count               = var.max_instances
    min_instance_count               = var.min_instances
    max_instance_request_concurrency = 1
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.this.email
    vpc_connector                    = var.vpc_connector
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables            = var.env

    dynamic "secret_environment_variables" {
      for_each = var.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  # A deployment fails when the account cannot read a bound secret yet.
  depends_on = [google_secret_manager_secret_iam_member.access]
}

# Invocation is Cloud Run IAM on the function's service; nothing is public.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.name # gen2: the service has the function's name
  role     = "roles/run.invoker"
  member   = each.value
}
