"""The largest record batch sevflow writes to each of its topics, which the topic must take.

Kafka refuses a record batch over the topic's ``max.message.bytes`` (the broker's
``message.max.bytes`` unless the topic sets its own) at every attempt. For the topics whose
writers cannot drop what they write that was a stall with no end: the outbox relay paused for
ever on one event, the sinks role stopped at every start on one dead letter, the worker retried
one quarantined record for ever. So the roles check each topic against what is written to it at
start (:func:`models.topics.mismatches`) and stop with the setting to change; a topic sevflow
creates itself is created to take it when the broker's default would not.
"""

from collections.abc import Iterable

from models.event_size import EVENT_MAX_BYTES
from models.quarantine import KAFKA_KEY_MAX, KEPT_BYTES_MAX

__all__ = [
    "ALERT_BATCH_BYTES",
    "DEAD_LETTER_MAX_BYTES",
    "EVENT_RECORD_BYTES",
    "QUARANTINE_RECORD_BYTES",
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


#: A quarantined record: the kept bytes in base64, the document's other fields (its reason and
#: where the record was read, JSON-escaped), its Kafka key and its envelope.
QUARANTINE_RECORD_BYTES = KEPT_BYTES_MAX * 4 // 3 + 8 + 4096 + KAFKA_KEY_MAX + RECORD_OVERHEAD


def largest_batches(
    alerts_topic: str, events_topic: str, dead_letter_topic: str, quarantine_topics: Iterable[str]
) -> dict[str, int]:
    """Topic name → the largest record batch written to it, for the topics where one matters."""
    return {
        alerts_topic: ALERT_BATCH_BYTES + RECORD_OVERHEAD,
        events_topic: EVENT_RECORD_BYTES,
        dead_letter_topic: DEAD_LETTER_MAX_BYTES + RECORD_OVERHEAD,
        **dict.fromkeys(quarantine_topics, QUARANTINE_RECORD_BYTES),
    }
