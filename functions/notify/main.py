"""Cloud Function notify: verdicts, kill switches and model events → each tenant's
Telegram, email and webhook, exactly once in effect; dead deliveries → the operator; the
daily digest (scheduler-fired)."""

from datetime import timedelta

from shared import contracts
from shared.runtime import FunctionApp
from shared.services.notify import NotifyService

# the payoff diagram's matplotlib costs ~1 s to import and load its fonts: GET /warmup
# takes that ahead of the first signal
app = FunctionApp("notify", max_age=timedelta(hours=1),
                  warmup=("shared.domain.notify.render:prime_renderer",))
for contract in (
    contracts.SignalApprovedV1,
    contracts.SignalBlockedV1,
    contracts.KillSwitchTrippedV1,
    contracts.KillSwitchResetV1,
    contracts.ModelPromotedV1,
    contracts.ModelRejectedV1,
    contracts.RetrainFailedV1,
    contracts.NotifyDeadV1,
):
    app.on_event(contract, NotifyService.from_runtime)
app.on_schedule(lambda rt: NotifyService.from_runtime(rt).digest)  # schedules/notify-digest.yaml
entry = app.target()
