# Cloud SQL for PostgreSQL 16: private IP only, daily backups, point-in-time recovery,
# deletion protection, and the two roles the schema expects (shared/migrations/0001):
#   qs_owner  owns every object and runs migrations (`qs db migrate`): a Cloud SQL user;
#   qs_app    the functions' role: DML only, row-level security binds it. Cloud SQL makes
#             every user it creates a member of cloudsqlsuperuser, so qs_app is created by
#             qs_owner in SQL instead (LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
#             NOBYPASSRLS, as local/postgres.py does), with the password terraform generates
#             here (terraform/README.md, "Apply the schema").

resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_79:PostgreSQL 16 is the major version the migrations, the row-level security policies and the embedded test server (pgserver 16) are verified on; moving to 17 is a tested change of its own.
  #checkov:skip=CKV2_GCP_13:log_duration would log every statement (thousands a minute with many tenants); Query Insights records statement latency instead.
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY unless enable_mlflow_tracking (default false) is set: pg8000 through an MLflow URL cannot do TLS, and that traffic stays on the private VPC. The functions always use the Cloud SQL connector (TLS).
  name                = "${local.prefix}-pg16"
  database_version    = "POSTGRES_16"
  region              = var.region
  deletion_protection = var.db_deletion_protection

  settings {
    tier                        = var.db_tier
    edition                     = "ENTERPRISE"
    availability_type           = var.db_availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.db_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.db_deletion_protection
    user_labels                 = local.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = google_compute_network.main.id
      enable_private_path_for_google_cloud_services = true
      # The functions connect through the Cloud SQL connector (TLS with instance
      # certificates). Only MLflow's direct connection, when enabled, cannot do TLS.
      ssl_mode = var.enable_mlflow_tracking ? "ALLOW_UNENCRYPTED_AND_ENCRYPTED" : "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = "20:30" # UTC = 02:00 IST, after retrain-nightly
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.db_log_retention_days

      backup_retention_settings {
        retained_backups = var.db_backup_retention_count
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7  # Sunday
      hour         = 21 # UTC = 02:30 IST Monday: no session, no retrain
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      query_string_length     = 1024
      record_application_tags = false
      record_client_address   = false
    }

    # Audit-grade logging (and what the CIS benchmark asks of PostgreSQL).
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "app" {
  name     = "quantsentinel"
  instance = google_sql_database_instance.main.name
}

resource "random_password" "owner" {
  length  = 32
  special = false
}

resource "random_password" "app" {
  length  = 32
  special = false
}

resource "google_sql_user" "owner" {
  name     = "qs_owner"
  instance = google_sql_database_instance.main.name
  password = random_password.owner.result
}

# MLflow's backend store: its own database, owned through its own role (it creates its
# tables on first use; shared/adapters/tracking.py).
resource "google_sql_database" "mlflow" {
  count    = var.enable_mlflow_tracking ? 1 : 0
  name     = "mlflow"
  instance = google_sql_database_instance.main.name
}

resource "random_password" "mlflow" {
  count   = var.enable_mlflow_tracking ? 1 : 0
  length  = 32
  special = false
}

resource "google_sql_user" "mlflow" {
  count    = var.enable_mlflow_tracking ? 1 : 0
  name     = "qs_mlflow"
  instance = google_sql_database_instance.main.name
  password = random_password.mlflow[0].result
}
