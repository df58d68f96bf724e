# Cloud Scheduler jobs generated from schedules/*.yaml (locals.tf): each POSTs its payload
# to its target function's /run with an OIDC token of the scheduler identity.

module "schedule" {
  source   = "./modules/scheduled_job"
  for_each = local.schedules

  project_id  = var.project_id
  region      = var.region
  name        = each.key
  description = try(each.value.description, "")
  schedule    = each.value.schedule
  time_zone   = try(each.value.time_zone, "Asia/Kolkata")
  paused      = contains(var.paused_schedules, each.key)

  attempt_deadline_s = try(each.value.attempt_deadline_s, 60)
  retry_count        = try(each.value.retry_count, 0)

  http_target = {
    uri                   = "${module.function[each.value.target].uri}/run"
    audience              = local.function_audiences[each.value.target]
    service_account_email = google_service_account.scheduler.email
    body                  = jsonencode(try(each.value.payload, {}))
  }

  depends_on = [google_project_service.enabled]
}

# Every schedule must name a deployed function (shared/schedules.py checks the same).
check "schedule_targets" {
  assert {
    condition     = alltrue([for s in values(local.schedules) : contains(keys(local.functions), s.target)])
    error_message = "A schedules/*.yaml target is not a function of locals.functions."
  }
}
