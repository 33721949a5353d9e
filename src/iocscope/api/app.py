"""The FastAPI application of ``iocscope serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from iocscope.api.errors import install_error_handlers
from iocscope.api.metrics import Metrics
from iocscope.api.middleware import RequestContextMiddleware
from iocscope.api.routes_lookup import router as lookup_router
from iocscope.api.routes_meta import router as meta_router
from iocscope.config import Settings
from iocscope.service.state import open_service

if TYPE_CHECKING:
    from iocscope.engine import Engine

DESCRIPTION = (
    "Enrich indicators of compromise from many threat-intelligence sources into "
    "one explainable verdict. Authenticate with `X-API-Key` or "
    "`Authorization: Bearer`. Every error uses the envelope "
    '`{"error": {"type", "code", "message", "request_id"}}`.'
)


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; the database, limiter and engine open in its lifespan.

    ``engine`` replaces the one built from every registered source (tests pass an
    engine with their own sources). The caller keeps ownership of it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics: Metrics = app.state.metrics
        async with open_service(settings, engine, lookup_counter=metrics) as state:
            app.state.service = state
            yield

    app = FastAPI(
        title="iocscope",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(lookup_router)
    app.include_router(meta_router)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
