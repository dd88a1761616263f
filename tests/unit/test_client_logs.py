"""aiokafka's repeated log lines are let through once per interval, with the count held back."""

import logging

from kafka_admin.client_logs import RepeatLimit, limit_repeats


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_same_line_passes_once_per_interval_and_then_says_how_many_were_held() -> None:
    clock = _Clock()
    limit = RepeatLimit(interval=10.0, clock=clock)
    line = "Topic %s not found in cluster metadata"
    assert limit.filter(_record("aiokafka.cluster", line, "events"))
    held = [limit.filter(_record("aiokafka.cluster", line, "events")) for _ in range(500)]
    assert not any(held)
    clock.now = 10.0
    again = _record("aiokafka.cluster", line, "events")
    assert limit.filter(again)
    assert again.getMessage() == (
        "Topic events not found in cluster metadata (and 500 more like it in the last 10 s)"
    )
    clock.now = 20.0  # nothing held since: the line goes out as it is
    plain = _record("aiokafka.cluster", line, "events")
    assert limit.filter(plain)
    assert plain.getMessage() == "Topic events not found in cluster metadata"


def test_other_texts_levels_and_loggers_are_not_held() -> None:
    limit = RepeatLimit(interval=10.0, clock=_Clock())
    assert limit.filter(_record("aiokafka.cluster", "Topic %s not found", "a"))
    assert limit.filter(_record("aiokafka.cluster", "Topic %s not found", "b"))
    assert limit.filter(_record("aiokafka.cluster", "Topic %s not found", "a", level=logging.WARNING))
    for _ in range(3):  # sevflow's own lines are never held
        assert limit.filter(_record("sevflow.sinks", "sinks stopped"))


def test_memory_stays_bounded_with_endless_distinct_lines() -> None:
    clock = _Clock()
    limit = RepeatLimit(interval=10.0, clock=clock)
    for i in range(5000):
        clock.now = i * 0.001
        assert limit.filter(_record("aiokafka.consumer", "offset %d", i))
    assert len(limit._seen) <= 1024


def test_limit_repeats_filters_what_reaches_the_root_handlers() -> None:
    root = logging.getLogger("test-client-logs-root")
    root.propagate = False
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    root.addHandler(Keep())
    limit_repeats(root)
    child = logging.getLogger("test-client-logs-root.aiokafka")
    # The filter looks at the name of the logger that made the record.
    for _ in range(100):
        root.handlers[0].handle(_record("aiokafka.fetcher", "Unable to fetch"))
        child.error("ours")
    assert lines.count("Unable to fetch") == 1
    assert lines.count("ours") == 100
