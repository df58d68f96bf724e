output "id" {
  description = "The job's id."
  value       = google_cloud_scheduler_job.this.id
}

output "name" {
  description = "The job's name."
  value       = google_cloud_scheduler_job.this.name
}
