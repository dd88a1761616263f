"""The largest record batch sevflow writes to each of its topics, which the topic must take.

Kafka refuses a record batch over the topic's ``max.message.bytes`` (the broker's
``message.max.bytes`` unless the topic sets its own) at every attempt. For the topics whose
writers cannot drop what they write that was a stall with no end: the outbox relay paused for
ever on one event, the sinks role stopped at every start on one dead letter. So the roles check
each topic against what is written to it at start (:func:`models.topics.mismatches`) and stop
with the setting to change; a topic sevflow creates itself is created to take it when the
broker's default would not.

Pure constants and one function: the relay's process, which loads no pydantic, may import it.
"""

from models.event_size import EVENT_MAX_BYTES

__all__ = [
    "ALERT_BATCH_BYTES",
    "DEAD_LETTER_MAX_BYTES",
    "EVENT_RECORD_BYTES",
    "RECORD_OVERHEAD",
    "largest_batches",
]

#: A record batch's header, one record's own header, its key and headers: far less than this.
RECORD_OVERHEAD = 1024

#: The receiver's producer batches an alert's record with others up to this many bytes
#: (aiokafka's ``max_batch_size``); a larger single record is refused as ``record_too_large``.
ALERT_BATCH_BYTES = 256 * 1024

#: An ``incident-events`` record: the relay's largest event document and its envelope.
EVENT_RECORD_BYTES = EVENT_MAX_BYTES + RECORD_OVERHEAD

#: The largest dead letter written: under Kafka's default record limit (1 MiB) with room to spare.
DEAD_LETTER_MAX_BYTES = 900_000


def largest_batches(alerts_topic: str, events_topic: str, dead_letter_topic: str) -> dict[str, int]:
    """Topic name → the largest record batch written to it, for the topics where one matters."""
    return {
        alerts_topic: ALERT_BATCH_BYTES + RECORD_OVERHEAD,
        events_topic: EVENT_RECORD_BYTES,
        dead_letter_topic: DEAD_LETTER_MAX_BYTES + RECORD_OVERHEAD,
    }
