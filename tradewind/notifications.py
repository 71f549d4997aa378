"""Notifiers: callables to use as callbacks that tell people or systems what happened.

Example::

    from tradewind.notifications import EmailNotifier, WebhookNotifier

    PythonOperator(
        task_id="train",
        python_callable=train,
        on_failure_callback=[
            EmailNotifier(to="ml-oncall@example.com"),
            WebhookNotifier(url="https://hooks.slack.com/services/..."),
        ],
    )

Subjects, bodies and webhook texts are Jinja templates rendered with the callback's
context (``ti``, ``dag``, ``run_id``, ``exception``, ...). Email goes through the SMTP
server in the ``TRADEWIND_SMTP_*`` settings.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SUBJECT = "Tradewind: {{ ti.dag_id }}.{{ ti.task_id }} {{ ti.state }} ({{ run_id }})"
DEFAULT_BODY = (
    "Task {{ ti.task_id }} of DAG {{ ti.dag_id }}, run {{ run_id }}, try {{ ti.try_number }}: "
    "{{ ti.state }}.{% if exception %}\n\nError: {{ exception }}{% endif %}"
)
DEFAULT_TEXT = (
    ":warning: {{ dag.dag_id }}{% if ti %}.{{ ti.task_id }}{% endif %} "
    "{{ reason | default(ti.state if ti else '') }} (run {{ run_id }})"
    "{% if exception %}: {{ exception }}{% endif %}"
)


def _render(template: str, context: Mapping[str, Any]) -> str:
    import jinja2.sandbox

    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.ChainableUndefined)
    values = {"exception": None, "ti": None, "reason": None, **context}
    return env.from_string(template).render(**values)


def send_email(
    to: str | Sequence[str], subject: str, body: str, *, settings: Any | None = None
) -> None:
    """Send one plain-text email through the configured SMTP server."""
    if settings is None:
        from tradewind.settings import get_settings

        settings = get_settings()
    recipients = [to] if isinstance(to, str) else list(to)
    message = EmailMessage()
    message["From"] = settings.smtp_mail_from
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    smtp_class = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    with smtp_class(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message, to_addrs=recipients)


class EmailNotifier:
    """Email the people in ``to`` (templated subject and body)."""

    def __init__(
        self,
        to: str | Sequence[str],
        subject: str = DEFAULT_SUBJECT,
        body: str = DEFAULT_BODY,
    ) -> None:
        self.to, self.subject, self.body = to, subject, body

    def __call__(self, context: Mapping[str, Any]) -> None:
        send_email(self.to, _render(self.subject, context), _render(self.body, context))
        logger.info("Sent a notification email to %s", self.to)


class WebhookNotifier:
    """POST JSON to ``url``; by default ``{"text": ...}``, which Slack understands."""

    def __init__(
        self,
        url: str,
        text: str = DEFAULT_TEXT,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.url, self.text, self.payload = url, text, payload
        self.headers = dict(headers or {})
        self.timeout_seconds = timeout_seconds

    def __call__(self, context: Mapping[str, Any]) -> None:
        body = dict(self.payload or {})
        body.setdefault("text", _render(self.text, context))
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, default=str).encode(),
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()
        logger.info("Posted a notification to %s", self.url)
