"""The local cloud's canary function (not deployed): ``local.probe`` pings and scheduler
firings each become one heartbeats row."""

from datetime import timedelta

from shared.contracts import ProbePingV1
from shared.runtime import FunctionApp
from shared.services.probe import ProbeService

app = FunctionApp("probe", max_age=timedelta(minutes=10))
app.on_event(ProbePingV1, ProbeService.from_runtime)
app.on_schedule(lambda rt: ProbeService.from_runtime(rt).scheduled)
entry = app.target()
