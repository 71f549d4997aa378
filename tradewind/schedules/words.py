"""Schedules in plain English for the UI and the API: "At 02:30 on Monday", "Every 5 minutes".

Only the common shapes are put into words; for anything else the caller shows the cron text.
"""

from __future__ import annotations

from datetime import timedelta


def describe_delta(delta: timedelta) -> str:
    """Words for a timedelta: "Every 5 minutes", "Every day"; "Every 0:00:01.500000" if odd."""
    micros = delta // timedelta(microseconds=1)
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        count, rest = divmod(micros, unit * 1_000_000)
        if rest == 0:
            return f"Every {name}" if count == 1 else f"Every {count} {name}s"
    return f"Every {delta}"


_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def describe_cron(expression: str) -> str | None:
    """Plain English for the common shapes of a 5-field cron; None for anything else."""
    fields = expression.split()
    if len(fields) != 5:
        return None
    clock = _describe_clock(fields[0], fields[1])
    days = _describe_days(fields[2], fields[3], fields[4])
    if clock is None or days is None:
        return None
    if not days:
        return f"{clock}, every day" if clock.startswith("At ") and ":" in clock else clock
    return f"{clock} {days}"


def _describe_clock(minute: str, hour: str) -> str | None:
    m = _number(minute)
    if hour == "*":
        if minute == "*":
            return "Every minute"
        if minute.startswith("*/") and _number(minute[2:]) is not None:
            return f"Every {minute[2:]} minutes"
        if m is not None:
            return "Every hour" if m == 0 else f"At {m} minutes past the hour"
        return None
    if m is None:
        return None
    if hour.startswith("*/") and _number(hour[2:]) is not None:
        every = f"every {hour[2:]} hours"
        return every.capitalize() if m == 0 else f"At {m} minutes past the hour, {every}"
    hours = [_number(part) for part in hour.split(",")]
    if any(h is None for h in hours):
        return None
    return "At " + _join([f"{h:02d}:{m:02d}" for h in hours if h is not None])


def _describe_days(dom: str, month: str, dow: str) -> str | None:
    if dom == month == dow == "*":
        return ""
    if dom == month == "*":
        names = []
        for part in dow.split(","):
            ends = [_weekday(end) for end in part.split("-")]
            if len(ends) > 2 or any(e is None for e in ends):
                return None
            names.append(" through ".join(_DAYS[e] for e in ends if e is not None))
        return "on " + _join(names)
    day = _number(dom)
    if dow != "*" or day is None:
        return None
    if month == "*":
        return f"on day {day} of the month"
    month_no = _number(month)
    if month_no is not None and 1 <= month_no <= 12:
        return f"on day {day} of {_MONTHS[month_no - 1]}"
    if month.startswith("*/") and _number(month[2:]) is not None:
        return f"on day {day} of the month, every {month[2:]} months"
    return None


def _weekday(text: str) -> int | None:
    number = _number(text)
    if number is not None:
        return number % 7 if number <= 7 else None
    names = [day[:3].lower() for day in _DAYS]
    return names.index(text.lower()) if text.lower() in names else None


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
