"""The task runner that executes one try of a task instance (and, later, the Celery app)."""
