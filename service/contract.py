"""Each endpoint declared once, as an ``Operation``: its handler and everything
``/openapi.json`` says about it (parameters, body, answers, problem codes), naming the
same pydantic models the handler validates with. The Starlette routes are made from the
operations, so the document and the routes cannot disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.problems import Code

Handler = Callable[[Request], Awaitable[Response]]
Auth = Literal["none", "client", "admin"]


@dataclass(frozen=True)
class Reply:
    """One successful answer: ``model`` as JSON, or raw content of ``media_types``."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ("application/json",)
    headers: dict[str, str] = field(default_factory=dict)  # name → description
    # The path parameter this answer's ``id`` fills in (``video_id``): the document links
    # it to every operation taking that parameter.
    id_of: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    auth: Auth = "client"
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    # The body may also come as multipart/form-data (the same fields, plus files).
    multipart: bool = False
    # A multipart/form-data body only, documented by this model (files as binary strings).
    form: type[BaseModel] | None = None
    idempotency_key: bool = False
    # Problem codes beyond those every operation of its kind can answer (``codes``).
    problems: tuple[Code, ...] = ()

    @property
    def operation_id(self) -> str:
        module = self.handler.__module__.rsplit(".", 1)[-1]
        return f"{module}.{self.handler.__name__.strip('_')}"

    def codes(self) -> list[Code]:
        """Every problem code this operation can answer."""
        found: list[Code] = []
        if self.auth != "none":
            # 429: failed authentications per address, requests per client.
            found += [Code.UNAUTHORIZED, Code.RATE_LIMITED]
        if self.auth == "admin":
            found.append(Code.FORBIDDEN)
        if self.path_params is not None:
            found += [Code.NOT_FOUND, Code.VALIDATION_ERROR]
        if self.query is not None:
            found.append(Code.VALIDATION_ERROR)
        if self.body is not None:
            found += [
                Code.INVALID_JSON,
                Code.UNSUPPORTED_MEDIA_TYPE,
                Code.BODY_TOO_LARGE,
                Code.VALIDATION_ERROR,
                Code.REQUEST_TIMEOUT,
            ]
        if self.form is not None:
            found += [Code.UNSUPPORTED_MEDIA_TYPE, Code.VALIDATION_ERROR, Code.REQUEST_TIMEOUT]
        found += [*self.problems, Code.UNAVAILABLE, Code.INTERNAL_ERROR]
        return list(dict.fromkeys(found))


def routes(operations: Iterable[Operation]) -> list[Route]:
    """One Starlette route per path, whatever its methods: a wrong method gets one 405
    whose ``Allow`` lists every method of the path."""
    by_path: dict[str, dict[str, Handler]] = {}
    for op in operations:
        handlers = by_path.setdefault(op.path, {})
        if op.method in handlers:
            raise ValueError(f"{op.method} {op.path} is declared twice")
        handlers[op.method] = op.handler
    return [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    endpoint.__name__ = "_".join(h.__name__ for h in handlers.values())
    return endpoint
