output "functions" {
  description = "Each function's Cloud Run URI, the OIDC audience it expects, and its runtime identity."
  value = {
    for name, f in module.function : name => {
      uri             = f.uri
      audience        = local.function_audiences[name]
      service_account = f.service_account_email
      source          = f.source_object
    }
  }
}

output "cloudsql_connection_name" {
  description = "QS_CLOUDSQL_INSTANCE of the functions (project:region:instance)."
  value       = google_sql_database_instance.main.connection_name
}

output "cloudsql_private_ip" {
  description = "The instance's private address (reachable from the VPC only)."
  value       = google_sql_database_instance.main.private_ip_address
}

output "buckets" {
  description = "Bucket names."
  value = merge({ for key, b in module.bucket : key => b.name }, {
    access_logs = google_storage_bucket.access_logs.name
  })
}

output "operator_secrets" {
  description = "Secrets an operator populates (gcloud secrets versions add <id> --data-file=-), and which are bound."
  value = {
    for id, s in local.secrets : google_secret_manager_secret.app[id].secret_id => (
      contains(var.disabled_secrets, id) ? "disabled" : "bound to ${join(", ", s.functions)}"
    ) if !s.managed
  }
}

output "schedules" {
  description = "Cloud Scheduler jobs created from schedules/*.yaml."
  value       = sort(keys(local.schedules))
}

output "dead_letter_subscription" {
  description = "Where operators pull dead letters."
  value       = google_pubsub_subscription.dead_letter_operator.id
}

output "ops_vm_command" {
  description = "Creates the temporary operations VM that applies the schema migrations (terraform/README.md, \"Apply the schema\"); delete it afterwards."
  value = join(" ", [
    "gcloud compute instances create ${local.prefix}-ops-vm",
    "--project=${var.project_id} --zone=${var.region}-a --machine-type=e2-medium",
    "--subnet=${google_compute_subnetwork.ops.name} --tags=${local.prefix}-ops",
    "--service-account=${google_service_account.ops.email} --scopes=cloud-platform",
    "--image-family=debian-12 --image-project=debian-cloud --shielded-secure-boot",
  ])
}

output "db_owner_password_secret" {
  description = "Secret holding qs_owner's password (migrations only; bound to no function)."
  value       = google_secret_manager_secret.db_owner_password.secret_id
}
