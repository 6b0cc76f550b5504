"""The OpenAPI 3.1 document, made from the operations (``service.contract``) and the
pydantic models they name: the models that validate requests are the ones documented."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.api import Problem
from schemas.problems import STATUS, TITLES, Code
from service.contract import Operation, Reply

REF = "#/components/schemas/{model}"
PROBLEM_JSON = "application/problem+json"
REQUEST_ID = {
    "description": "The request's id (the caller's X-Request-ID if valid, else a new one);"
    " it is on every log line of the request.",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
# check_key in service.idempotency: 1-255 printable ASCII characters.
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key and body answer with the first request's video, once"
    " (one task, one hold); a different body with the key is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


def document(operations: Sequence[Operation], *, title: str, version: str) -> dict[str, Any]:
    """The whole document, as a JSON-ready dict."""
    refs, schemas = _schemas(operations)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for op in operations:
        paths[op.path][op.method.lower()] = _operation(op, refs, schemas)
    _link(operations, paths)
    if "VideoCreate" in schemas:
        schemas["VideoCreateForm"] = _form_schema(schemas["VideoCreate"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every error is RFC 9457 application/problem+json with a stable"
            " `code`; the codes each operation can answer are listed per status.",
        },
        "paths": dict(paths),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key."}
            },
        },
    }


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _schemas(operations: Sequence[Operation]) -> tuple[Refs, dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        for model in (op.path_params, op.query, op.body, op.form):
            if model is not None:
                wanted.append((model, "validation"))
        wanted += [(r.model, "serialization") for r in op.replies if r.model is not None]
    refs, definitions = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    models: Refs = {}
    for (kind, mode), ref in refs.items():
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            models[(kind, mode)] = ref
    return models, schemas


def _operation(op: Operation, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"bearer": []}] if op.auth != "none" else [],
        "parameters": _parameters(op, refs, schemas),
        "responses": _responses(op, refs),
    }
    if op.auth == "admin":
        out["description"] = "Needs an admin API key."
    if op.body is not None:
        content = {"application/json": {"schema": refs[(op.body, "validation")]}}
        if op.multipart:
            content["multipart/form-data"] = {
                "schema": {"$ref": REF.format(model="VideoCreateForm")}
            }
        out["requestBody"] = {"required": True, "content": content}
    if op.form is not None:
        form = {"schema": refs[(op.form, "validation")]}
        out["requestBody"] = {"required": True, "content": {"multipart/form-data": form}}
    return out


def _link(operations: Sequence[Operation], paths: dict[str, dict[str, Any]]) -> None:
    """Links from each answer that names a resource to the operations that take it."""
    for op in operations:
        for reply in op.replies:
            if reply.id_of is None:
                continue
            links = {
                other.operation_id.replace(".", "_"): {
                    "operationId": other.operation_id,
                    "parameters": {reply.id_of: "$response.body#/id"},
                }
                for other in operations
                if other.path_params is not None and reply.id_of in other.path_params.model_fields
            }
            paths[op.path][op.method.lower()]["responses"][str(reply.status)]["links"] = links


def _parameters(op: Operation, refs: Refs, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for where, model in (("path", op.path_params), ("query", op.query)):
        if model is None:
            continue
        schema = _resolve(refs[(model, "validation")], schemas)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = _without_null(prop)
            description = prop.pop("description", None)
            prop.pop("title", None)
            param = {
                "name": name,
                "in": where,
                "required": where == "path" or name in required,
                "schema": prop,
            }
            if description:
                param["description"] = description
            params.append(param)
    if op.idempotency_key:
        params.append(IDEMPOTENCY_KEY)
    return params


def _responses(op: Operation, refs: Refs) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for reply in op.replies:
        responses[str(reply.status)] = _reply(reply, refs)
    by_status: dict[int, list[Code]] = defaultdict(list)
    for code in op.codes():
        by_status[STATUS[code]].append(code)
    for status, codes in sorted(by_status.items()):
        problem = _problem(status, codes)
        existing = responses.get(str(status))
        if existing is None:
            responses[str(status)] = problem
        else:
            existing.setdefault("content", {}).update(problem["content"])
            existing["description"] += f" Or a problem: {', '.join(codes)}."
    return responses


def _reply(reply: Reply, refs: Refs) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID}
    for name, description in reply.headers.items():
        headers[name] = {"description": description, "required": True, "schema": {"type": "string"}}
    out: dict[str, Any] = {"description": reply.description, "headers": headers}
    if reply.model is not None:
        schema = refs[(reply.model, "serialization")]
        out["content"] = {media: {"schema": schema} for media in reply.media_types}
    elif reply.media_types:
        out["content"] = {media: {"schema": _raw_schema(media)} for media in reply.media_types}
    return out


def _raw_schema(media: str) -> dict[str, Any]:
    if media == "application/json":
        return {"type": "object"}
    if media.startswith("text/") or media == "application/javascript":
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _problem(status: int, codes: list[Code]) -> dict[str, Any]:
    schema = {
        "allOf": [
            {"$ref": REF.format(model="Problem")},
            {
                "type": "object",
                "properties": {
                    "status": {"const": status},
                    "code": {"enum": [str(c) for c in codes]},
                },
            },
        ]
    }
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID}
    if status in (429, 503):
        headers["Retry-After"] = {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    return {
        "description": f"{TITLES.get(status, 'Error')}: {', '.join(codes)}.",
        "headers": headers,
        "content": {PROBLEM_JSON: {"schema": schema}},
    }


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = schemas[ref.rsplit("/", 1)[-1]]
    return resolved


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: absent is how a parameter is null."""
    schema = copy.deepcopy(schema)
    options = schema.pop("anyOf", None)
    if options is not None:
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _form_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """The multipart form of a create: the JSON fields as text fields (``metadata`` as a
    JSON object in text, ``images`` repeated), plus ``input_reference`` image files."""
    form = copy.deepcopy(json_schema)
    form["title"] = "VideoCreateForm"
    form["description"] = (
        "The fields of VideoCreate as form fields: metadata as JSON text (or one"
        " metadata[key] field per pair), images repeated (or images[]; upload ids too), and up"
        " to four input_reference files (PNG, JPEG or WebP, 10 MB each) or the fields"
        " input_reference[file_id] / input_reference[image_url]."
    )
    properties = {name: _without_null(prop) for name, prop in form["properties"].items()}
    properties["metadata"] = {
        "type": "string",
        "contentMediaType": "application/json",
        "description": "A JSON object of at most 16 string pairs.",
    }
    properties["input_reference"] = {
        "type": "array",
        "maxItems": 4,
        "items": {"type": "string", "format": "binary", "contentMediaType": "image/*"},
    }
    form["properties"] = properties
    return form
