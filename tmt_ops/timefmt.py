"""Times as the toolkit's documents write them: ISO 8601 in UTC, to the millisecond (JSON, events, the journal)."""

import time


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
