"""Drives timer-triggered functions locally on their NCRONTAB schedules, as the Functions host does."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading

from azure.functions.timer import TimerRequest  # func.TimerRequest is the abstract type

from devhost.functions import Registration
from devhost.http_server import invoke

_log = logging.getLogger("devhost")
_SETTING = re.compile(r"^%([A-Za-z0-9_]+)%$")
# second minute hour day month day-of-week, with the ranges NCRONTAB allows.
_FIELDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


class Schedule:
    """A six-field NCRONTAB expression: ``*``, ``n``, ``a-b``, lists and ``/step`` in each field."""

    def __init__(self, expression: str) -> None:
        parts = expression.split()
        if len(parts) != 6:
            raise ValueError(f"NCRONTAB needs six fields (second minute hour day month weekday): {expression!r}")
        self.expression = expression
        self._allowed = [_parse_field(part, low, high) for part, (low, high) in zip(parts, _FIELDS, strict=True)]

    def matches(self, when: dt.datetime) -> bool:
        weekday = (when.weekday() + 1) % 7  # NCRONTAB: 0 = Sunday
        values = (when.second, when.minute, when.hour, when.day, when.month, weekday)
        return all(value in allowed for value, allowed in zip(values, self._allowed, strict=True))


def _parse_field(text: str, low: int, high: int) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start, end = (int(v) for v in body.split("-", 1))
        else:
            start = int(body)
            end = high if step_text else start
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"NCRONTAB field {text!r} is outside {low}-{high}")
        allowed.update(range(start, end + 1, step))
    return frozenset(allowed)


def resolve_schedule(registration: Registration) -> Schedule:
    """The registration's schedule; a ``%SETTING%`` reference is read from the environment (as the
    host reads app settings), else from the setting's default in shared/config.py."""
    schedule = str(registration.trigger.get("schedule", ""))
    found = _SETTING.match(schedule)
    if found:
        name = found.group(1)
        schedule = os.environ.get(name, "").strip()
        if not schedule:
            from shared.config import load_settings

            schedule = str(load_settings({}).describe().get(name, {}).get("value") or "")
        if not schedule:
            raise ValueError(f"{registration.name}: app setting {name} (its schedule) is not set")
    return Schedule(schedule)


class TimerDriver:
    """One thread that fires each timer function when its schedule matches the current second (UTC)."""

    def __init__(self, registrations: list[Registration]) -> None:
        self._timers = [(r, resolve_schedule(r)) for r in registrations if r.trigger_type == "timerTrigger"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devhost-timers", daemon=True)

    @property
    def schedules(self) -> dict[str, str]:
        return {r.name: s.expression for r, s in self._timers}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def fire(self, name: str, *, past_due: bool = False) -> None:
        """Run one timer function now (also what the schedule does)."""
        registration = next(r for r, _ in self._timers if r.name == name)
        try:
            invoke(registration, TimerRequest(past_due=past_due))
        except Exception:  # as in Azure: a failed run is logged, and the schedule goes on
            _log.exception("timer function %s failed", name)

    def _run(self) -> None:
        last = None
        while not self._stop.is_set():
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            if now != last:
                last = now
                for registration, schedule in self._timers:
                    if schedule.matches(now):
                        self.fire(registration.name)
            self._stop.wait(0.2)
