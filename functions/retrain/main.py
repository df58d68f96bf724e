"""Cloud Function retrain: scheduled retraining and the governed model registry;
POST /train (retrain one model now) and POST /rollback (restore the previous version)."""

from datetime import timedelta

from shared.runtime import FunctionApp
from shared.services.retrain import RetrainService, RollbackCommand, TrainCommand

app = FunctionApp("retrain", max_age=timedelta(hours=6))
app.on_schedule(RetrainService.from_runtime)
app.on_http("/train", TrainCommand, lambda rt: RetrainService.from_runtime(rt).train_api)
app.on_http("/rollback", RollbackCommand,
            lambda rt: RetrainService.from_runtime(rt).rollback_api)
entry = app.target()
