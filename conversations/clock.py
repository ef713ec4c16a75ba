"""Align the customer's browser clock (rrweb timestamps) with the server's clock (messages).

rrweb stamps every event with the customer's `Date.now()`, which may be minutes off; message
and event times come from servers. Each stored rrweb batch gives one sample: the server's
receive time minus the timestamp of the batch's last event. That difference is the clock
offset plus the delay between recording the last event and the server storing the batch
(buffering, network, queueing), and that delay is never negative. So every sample is an upper
bound of the offset, and the smallest sample is the tightest bound: it errs by the shortest
delay seen, usually well under a second once a few batches have arrived. One early-arriving
batch is enough to pin it; a late one never drags the estimate.

    offset = min(received_at_ms - last_ts)     over the conversation's batches
    recording time of a server moment = server_ms - offset
"""

from collections.abc import Iterable
from datetime import datetime


def epoch_ms(moment: datetime) -> int:
    """A timezone-aware datetime as epoch milliseconds."""
    return round(moment.timestamp() * 1000)


def clock_offset_ms(samples: Iterable[tuple[datetime, int]]) -> int:
    """Estimate server minus browser clock (ms) from (received_at, last_ts) batch samples.

    Without samples the clocks are taken to agree (offset 0).
    """
    offsets = [epoch_ms(received_at) - last_ts for received_at, last_ts in samples]
    return min(offsets) if offsets else 0


def to_recording_ms(server_ms: int | None, offset_ms: int) -> int | None:
    """A server time (epoch ms) on the recording's (browser) clock."""
    return None if server_ms is None else server_ms - offset_ms
