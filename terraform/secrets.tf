# Secret Manager secrets (locals.secrets). Terraform writes the values it generates (the
# database passwords, MLflow's URI); operators add versions of the others with
# `gcloud secrets versions add` (terraform/README.md, "Secrets"), so tokens never pass
# through terraform state. Each is readable only by the functions bound to it
# (modules/function grants roles/secretmanager.secretAccessor per secret).

resource "google_secret_manager_secret" "app" {
  for_each = local.secrets

  secret_id = "${local.prefix}-${each.key}"
  labels    = merge(local.labels, { managed-value = each.value.managed ? "terraform" : "operator" })

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "db_app_password" {
  secret      = google_secret_manager_secret.app["db-app-password"].id
  secret_data = random_password.app.result
}

resource "google_secret_manager_secret_version" "mlflow_tracking_uri" {
  count  = var.enable_mlflow_tracking ? 1 : 0
  secret = google_secret_manager_secret.app["mlflow-tracking-uri"].id
  secret_data = format("postgresql+pg8000://%s:%s@%s:5432/%s",
    google_sql_user.mlflow[0].name, random_password.mlflow[0].result,
  google_sql_database_instance.main.private_ip_address, google_sql_database.mlflow[0].name)
}

# The owner role's password, for operators running migrations (never bound to a function).
# (db-app-password, above, is what qs_owner sets as qs_app's password when creating it.)
resource "google_secret_manager_secret" "db_owner_password" {
  secret_id = "${local.prefix}-db-owner-password"
  labels    = merge(local.labels, { managed-value = "terraform" })

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "db_owner_password" {
  secret      = google_secret_manager_secret.db_owner_password.id
  secret_data = random_password.owner.result
}
