output "name" {
  description = "The function's GCP name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "The function's Cloud Run URI (push endpoint and scheduler target base)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "The Cloud Run service behind the function."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "service_account_email" {
  description = "The function's runtime identity."
  value       = google_service_account.this.email
}

output "source_object" {
  description = "gs:// path of the deployed bundle."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}
