"""Fault-injection rules and the log of AWS calls the emulator served."""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("throttle", "server_error", "delay")
DEFAULT_SEED = 0
# Bounds memory for a long-lived emulator; far more than one e2e run makes.
MAX_LOGGED_CALLS = 100_000


@dataclass
class FaultRule:
    service: str
    operation: str
    fault: str
    rate: float = 1.0
    delay_ms: int = 0
    count: int | None = None
    fired: int = 0

    @classmethod
    def from_json(cls, raw: Any) -> FaultRule:
        """Builds a rule from the control API's JSON, raising ValueError when malformed."""
        if not isinstance(raw, dict):
            raise ValueError("each rule must be a JSON object")
        known = {"service", "operation", "fault", "rate", "delayMs", "count"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown rule fields: {', '.join(unknown)}")
        service = raw.get("service", "*")
        operation = raw.get("operation", "*")
        if not isinstance(service, str) or not service:
            raise ValueError("service must be a non-empty string")
        if not isinstance(operation, str) or not operation:
            raise ValueError("operation must be a non-empty string")
        fault = raw.get("fault")
        if fault not in FAULT_KINDS:
            raise ValueError(f"fault must be one of {', '.join(FAULT_KINDS)}")
        rate = raw.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be a number between 0.0 and 1.0")
        delay_ms = raw.get("delayMs", 0)
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError("delayMs must be a non-negative integer")
        if fault == "delay" and "delayMs" not in raw:
            raise ValueError("a delay rule needs delayMs")
        count = raw.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError("count must be a non-negative integer")
        return cls(service.lower(), operation, fault, float(rate), delay_ms, count)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "fault": self.fault,
            "rate": self.rate,
            "delayMs": self.delay_ms,
            "count": self.count,
            "fired": self.fired,
        }

    def matches(self, service: str | None, operation: str) -> bool:
        return (self.service == "*" or self.service == (service or "")) and (
            self.operation == "*" or self.operation == operation
        )


@dataclass(frozen=True)
class FaultDecision:
    fault: str
    delay_ms: int


class FaultInjector:
    """Decides, per request, whether a fault fires.

    The first matching rule that fires wins. Only matching rules draw from the
    seeded generator, so a sequential test sees the same faults on every run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._seed = DEFAULT_SEED
        self._rng = random.Random(DEFAULT_SEED)

    def configure(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            self._seed = DEFAULT_SEED if seed is None else seed
            self._rng = random.Random(self._seed)

    def clear(self) -> None:
        self.configure([])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self._seed, "rules": [r.to_json() for r in self._rules]}

    def decide(self, service: str | None, operation: str) -> FaultDecision | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(service, operation):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if self._rng.random() < rule.rate:
                    # Counted now, before app.py sleeps out a delay, so a test
                    # polling `fired` learns a delayed request is in flight.
                    rule.fired += 1
                    return FaultDecision(rule.fault, rule.delay_ms)
            return None


class CallLog:
    """Every AWS request served, in the order the responses were produced.

    seq never restarts, not even after clear(), so a reader polling with
    `since` never mistakes new calls for ones it has already seen.
    """

    def __init__(self, log_file: str | None = None) -> None:
        self._lock = threading.Lock()
        self._calls: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_CALLS)
        self._seq = 0
        # Every call also goes to this file, one JSON line each, so that a
        # whole test run's calls outlive the emulator and its bounded deque.
        self._log_file = log_file

    def record(
        self,
        *,
        started: float,
        service: str | None,
        region: str | None,
        operation: str,
        status: int,
        fault: str | None,
        target: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": started,
                "service": service,
                "region": region,
                "operation": operation,
                "status": status,
                "fault": fault,
                "target": target,
                **(context or {}),
            }
            self._calls.append(entry)
            if self._log_file:
                with open(self._log_file, "a", encoding="utf-8") as out:
                    out.write(json.dumps(entry, sort_keys=True) + "\n")
            return dict(entry)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls if c["seq"] > seq]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
