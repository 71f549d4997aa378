"""The webserver's ASGI app: `/auth/token`, the REST API under `/api/v2`, `/docs`, and the
web UI (every other path).

The webserver reads and writes the metadata database only; it never imports a DAG
file (DAG structure comes from the serialized versions the DAG processor stored).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

import tradewind
from tradewind.db import ensure_schema, make_engine, make_session_factory
from tradewind.settings import Settings, get_settings
from webserver import ui
from webserver.api import (
    assets,
    auth,
    backfills,
    clearing,
    dag_cache,
    dag_runs,
    dags,
    monitor,
    resources,
    task_instances,
)

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v2"


class _CollapseLeadingSlashes:
    """``//api/v2/...`` (a client host configured with a trailing slash) is ``/api/v2/...``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = {**scope, "path": "/" + scope["path"].lstrip("/")}
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings)
    ensure_schema(engine)
    app = FastAPI(
        title="Tradewind REST API",
        version=tradewind.__version__,
        description="Airflow REST API v2 compatible: scripts written for "
        "apache-airflow-client 3.x work against it.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.factory = make_session_factory(engine)
    app.state.dag_list = dag_cache.ResponseCache(dag_cache.watch_for(engine))
    app.state.failed_logins = auth.FailedLogins()
    app.include_router(auth.router)
    for module in (
        monitor,
        dags,
        dag_runs,
        clearing,
        task_instances,
        resources,
        backfills,
        assets,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    ui.install(app)
    app.add_middleware(_CollapseLeadingSlashes)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"Internal error ({type(exc).__name__}); see the webserver log"},
            status_code=500,
        )

    return app


def app_factory() -> Any:
    """For `uvicorn --factory webserver.app:app_factory` (each worker builds its own)."""
    return create_app()
