import io
import json
import logging

from shared.logs import configure_logging, log_labels


def test_lines_are_cloud_logging_json_with_labels_and_redaction():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging("decide", "INFO", stream=stream)
        log = logging.getLogger("shared.services.decide")
        with log_labels(event_id="evt-1"):
            log.warning("blocked: %s", "cost_ratio 0.52 > 0.40", extra={"token": "abc", "wall": "cost"})
        log.info("after")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        root.handlers = saved
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["severity"] == "WARNING"
    assert first["message"] == "blocked: cost_ratio 0.52 > 0.40"
    assert first["logging.googleapis.com/labels"] == {"function": "decide", "event_id": "evt-1"}
    assert first["token"] == "[redacted]" and first["wall"] == "cost"
    assert first["logging.googleapis.com/sourceLocation"]["function"].startswith("test_")
    assert second["logging.googleapis.com/labels"] == {"function": "decide"}  # label scope ended
    assert third["severity"] == "ERROR" and "ValueError: boom" in third["message"]
    assert third["@type"].endswith("ReportedErrorEvent")


def test_every_thread_gets_the_function_label():
    import threading

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging("notify", "INFO", stream=stream)
        worker = threading.Thread(target=lambda: logging.getLogger("x").info("from a worker"))
        worker.start()
        worker.join()
    finally:
        root.handlers = saved
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["logging.googleapis.com/labels"] == {"function": "notify"}
