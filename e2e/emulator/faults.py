"""Fault-injection rules and the log of AWS calls the emulator served."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("throttle", "server_error", "delay", "hold", "error")
# Kinds that sleep for delayMs, so a rule of that kind must say how long.
TIMED_KINDS = ("delay", "hold")
ERROR_FIELDS = ("code", "status", "message")
DEFAULT_ERROR_STATUS = 400
DEFAULT_ERROR_MESSAGE = "Error injected by the e2e emulator"
# An error code travels in an HTTP header (x-amzn-ErrorType) for REST-JSON,
# so it must be a single header-safe token.
_ERROR_CODE = re.compile(r"[!-~]+")
DEFAULT_SEED = 0
# Bounds memory for a long-lived emulator; far more than one e2e run makes.
MAX_LOGGED_CALLS = 100_000


def _non_negative_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def _operation(raw: Any) -> str | tuple[str, ...]:
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(raw, list) and raw and all(isinstance(op, str) and op for op in raw):
        return tuple(raw)
    raise ValueError("operation must be a non-empty string or a non-empty list of non-empty strings")


@dataclass(frozen=True)
class InjectedError:
    """The AWS error an `error` rule answers, in whatever protocol the service speaks."""

    code: str
    status: int
    message: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InjectedError:
        code = raw.get("code")
        if not isinstance(code, str) or not _ERROR_CODE.fullmatch(code):
            raise ValueError("an error rule needs code, a non-empty string without spaces")
        status = raw.get("status", DEFAULT_ERROR_STATUS)
        # Below 400 an SDK would take the response for a success.
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status must be an integer from 400 to 599")
        message = raw.get("message", DEFAULT_ERROR_MESSAGE)
        if not isinstance(message, str):
            raise ValueError("message must be a string")
        return cls(code, status, message)


@dataclass
class FaultRule:
    service: str
    operation: str | tuple[str, ...]
    fault: str
    rate: float = 1.0
    delay_ms: int = 0
    count: int | None = None
    after: int = 0
    error: InjectedError | None = None
    # Only calls signed with this key: tests run several operators at once,
    # each with a key of its own, and fault one without touching the others.
    access_key: str | None = None
    fired: int = 0
    seen: int = 0
    # Firings decided, including holds whose effect is still being applied;
    # `count` limits these, so concurrent held requests cannot overshoot it
    # while `fired` has not caught up yet.
    claimed: int = field(default=0, repr=False)
    # AWS throttles by request rate, not by coin toss: with a limit, the rule
    # fires only for requests beyond `limit_per_second` (a token bucket
    # holding one second's worth), so a client that slows down is throttled
    # less, as adaptive retry expects.
    limit_per_second: float | None = None
    tokens: float = field(default=0.0, repr=False)
    refilled_at: float = field(default=0.0, repr=False)

    @classmethod
    def from_json(cls, raw: Any) -> FaultRule:
        """Builds a rule from the control API's JSON, raising ValueError when malformed."""
        if not isinstance(raw, dict):
            raise ValueError("each rule must be a JSON object")
        known = {
            "service", "operation", "fault", "rate", "delayMs", "count", "after", "accessKeyId",
            "limitPerSecond", *ERROR_FIELDS,
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown rule fields: {', '.join(unknown)}")
        service = raw.get("service", "*")
        if not isinstance(service, str) or not service:
            raise ValueError("service must be a non-empty string")
        operation = _operation(raw.get("operation", "*"))
        fault = raw.get("fault")
        if fault not in FAULT_KINDS:
            raise ValueError(f"fault must be one of {', '.join(FAULT_KINDS)}")
        rate = raw.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be a number between 0.0 and 1.0")
        delay_ms = _non_negative_int(raw.get("delayMs", 0), "delayMs")
        if fault in TIMED_KINDS and "delayMs" not in raw:
            raise ValueError(f"a {fault} rule needs delayMs")
        count = raw.get("count")
        if count is not None:
            count = _non_negative_int(count, "count")
        after = _non_negative_int(raw.get("after", 0), "after")
        error = None
        if fault == "error":
            error = InjectedError.from_json(raw)
        elif any(key in raw for key in ERROR_FIELDS):
            # Silently ignoring them would hide a rule meant as an `error`.
            raise ValueError(f"{', '.join(ERROR_FIELDS)} belong to error rules only")
        access_key = raw.get("accessKeyId")
        if access_key is not None and (not isinstance(access_key, str) or not access_key):
            raise ValueError("accessKeyId must be a non-empty string")
        limit = raw.get("limitPerSecond")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0):
            raise ValueError("limitPerSecond must be a non-negative number")
        rule = cls(service.lower(), operation, fault, float(rate), delay_ms, count, after, error, access_key)
        if limit is not None:
            rule.limit_per_second = float(limit)
            rule.tokens = float(limit)
            rule.refilled_at = time.monotonic()
        return rule

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "operation": self.operation if isinstance(self.operation, str) else list(self.operation),
            "fault": self.fault,
            "rate": self.rate,
            "delayMs": self.delay_ms,
            "count": self.count,
            "after": self.after,
        }
        if self.error is not None:
            out.update(code=self.error.code, status=self.error.status, message=self.error.message)
        if self.access_key is not None:
            out["accessKeyId"] = self.access_key
        if self.limit_per_second is not None:
            out["limitPerSecond"] = self.limit_per_second
        out.update(seen=self.seen, fired=self.fired)
        return out

    def matches(self, service: str | None, operation: str, access_key: str | None = None) -> bool:
        if self.service != "*" and self.service != (service or ""):
            return False
        if self.access_key is not None and self.access_key != access_key:
            return False
        operations = (self.operation,) if isinstance(self.operation, str) else self.operation
        return "*" in operations or operation in operations


@dataclass(frozen=True)
class FaultDecision:
    fault: str
    delay_ms: int
    error: InjectedError | None = None
    # The rule that fired: a hold reports back to it once it begins.
    rule: FaultRule | None = field(default=None, compare=False, repr=False)


class FaultInjector:
    """Decides, per request, whether a fault fires.

    The first matching rule that fires wins. Only matching rules past their
    `after` draw from the seeded generator, so a sequential test sees the
    same faults on every run.
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

    def decide(self, service: str | None, operation: str, access_key: str | None = None) -> FaultDecision | None:
        with self._lock:
            decision = None
            for rule in self._rules:
                if not rule.matches(service, operation, access_key):
                    continue
                # Every matching rule counts the request, even one an earlier
                # rule takes, so `after` targets the k-th call whatever the
                # other rules do.
                rule.seen += 1
                if decision is None and self._fires(rule):
                    rule.claimed += 1
                    if rule.fault != "hold":
                        # Counted now, before app.py sleeps out a delay, so a
                        # test polling `fired` learns a delayed request is in
                        # flight.
                        rule.fired += 1
                    decision = FaultDecision(rule.fault, rule.delay_ms, rule.error, rule)
            return decision

    def _fires(self, rule: FaultRule) -> bool:
        if rule.seen <= rule.after:
            return False
        if rule.count is not None and rule.claimed >= rule.count:
            return False
        if rule.limit_per_second is not None and self._within_limit(rule):
            return False
        return self._rng.random() < rule.rate

    @staticmethod
    def _within_limit(rule: FaultRule) -> bool:
        now = time.monotonic()
        limit = rule.limit_per_second or 0.0
        rule.tokens = min(limit, rule.tokens + (now - rule.refilled_at) * limit)
        rule.refilled_at = now
        if rule.tokens >= 1.0:
            rule.tokens -= 1.0
            return True
        return False

    def hold_began(self, decision: FaultDecision) -> None:
        """Counts a hold as fired once the request's effect is applied, so a
        test polling `fired` knows the write happened and its answer is held."""
        if decision.rule is None:
            return
        with self._lock:
            # A rule replaced meanwhile is no longer listed: counting it is harmless.
            decision.rule.fired += 1


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

    def last_seq(self) -> int:
        """The seq of the last call recorded, cleared or not (0 before any)."""
        with self._lock:
            return self._seq

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls if c["seq"] > seq]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
