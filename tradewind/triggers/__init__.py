"""Triggers: small asyncio waits that the triggerer runs on behalf of deferred tasks.

A task that would otherwise sit in a worker slot waiting (for a time, a file, another
DAG) calls ``self.defer(trigger=..., method_name=...)``. Its try is suspended (state
``deferred``, slot freed), `tradewind triggerer` runs the trigger, and when the trigger
yields its first `TriggerEvent` the task is queued again and resumes in ``method_name``
with ``event=<the payload>``.

Writing one::

    class QueueEmptyTrigger(BaseTrigger):
        def __init__(self, queue: str, poll_interval: float = 5.0):
            super().__init__()
            self.queue, self.poll_interval = queue, poll_interval

        def serialize(self):
            return ("my_pkg.triggers.QueueEmptyTrigger",
                    {"queue": self.queue, "poll_interval": self.poll_interval})

        async def run(self):
            while await queue_length(self.queue) > 0:
                await asyncio.sleep(self.poll_interval)
            yield TriggerEvent({"queue": self.queue})

A trigger must be importable by its class path in the triggerer and rebuilt from its
kwargs (JSON plus datetimes and timedeltas). Its ``run`` must never block the event
loop: use ``await asyncio.sleep``, asyncio libraries, or ``await asyncio.to_thread``.
"""

from tradewind.triggers.base import BaseTrigger, TriggerEvent, trigger_from_record

__all__ = ["BaseTrigger", "TriggerEvent", "trigger_from_record"]
