"""What a Create body carried that this workload does not know, counted and told once: Fabric adds properties and
invokeTypes over time, and a request that has them is served, not refused.

Each property name is counted in a metric labelled by name and logged at WARNING the first time this process
sees it; each unknown invokeType value is counted and logged the first time. Both remember a bounded number of
names, so that no sender can grow a label set or this process's memory without bound: names past the first
MAX_NAMES, or longer than MAX_NAME_LENGTH, are counted as OTHER and logged once together.
"""

from __future__ import annotations

import logging
import threading

from fabric_jobs.observability import metrics
from fabric_jobs.rest_bridge.validation import CreateBody

logger = logging.getLogger(__name__)

MAX_NAMES = 64
MAX_NAME_LENGTH = 64
OTHER = "_other"


class FirstSeen:
    """Names seen so far, at most `limit` of them: `see` says whether a name is new, and the name it is counted as."""

    def __init__(self, limit: int = MAX_NAMES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def see(self, name: str) -> tuple[str, bool]:
        with self._lock:
            if name in self._seen:
                return name, False
            if len(name) > MAX_NAME_LENGTH or len(self._seen) >= self._limit:
                name = OTHER
                if name in self._seen:
                    return name, False
            self._seen.add(name)
            return name, True


class UnknownInCreate:
    """Counts and logs (once per name per process) what Create bodies carried that is not in the contract."""

    def __init__(self) -> None:
        self._properties = FirstSeen()
        self._invoke_types = FirstSeen()

    def note(self, body: CreateBody) -> None:
        for name in body.unknown_properties:
            label, new = self._properties.see(name)
            metrics.rest_unknown_properties.labels(label).inc()
            if new:
                shown = "other names (past the first ones or too long)" if label == OTHER else repr(label)
                logger.warning(
                    "a Create body carried the property %s, which this workload does not know: passed over "
                    "(logged once; counted in fabric_jobs_rest_unknown_properties)",
                    shown,
                )
        if body.unknown_invoke_type is not None:
            metrics.rest_unknown_invoke_types.inc()
            label, new = self._invoke_types.see(body.unknown_invoke_type)
            if new:
                shown = "other values" if label == OTHER else label
                logger.warning(
                    "a Create body carried invokeType %s, which this workload does not know: taken as "
                    "UnknownFutureValue (logged once; counted in fabric_jobs_rest_unknown_invoke_types)",
                    shown,
                )
