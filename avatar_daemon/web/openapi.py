"""The OpenAPI document, built from the same endpoint table the server registers, so it cannot drift."""

from __future__ import annotations

import re
from typing import Any

from .common import Endpoint


def document(endpoints: list[Endpoint], plugin_routes: list[tuple[str, str]], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for e in endpoints:
        op: dict[str, Any] = {"summary": e.summary, "operationId": f"{e.method.lower()}_{_slug(e.path)}",
                              "responses": {str(code): {"description": text} for code, text in e.responses.items()}}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", e.path)]
        params += [{"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                   for n, d in e.query.items()]
        if params:
            op["parameters"] = params
        if e.body is not None:
            schema = e.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[e.body.__name__] = schema
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}}}
        if e.auth:
            op["responses"].setdefault("401", {"description": "no or unknown bearer token"})
        else:
            op["security"] = []
        paths.setdefault(e.path, {})[e.method.lower()] = op
    for method, path in plugin_routes:
        paths.setdefault(path, {})[method.lower()] = {
            "summary": "a plugin's route (its own authentication)", "security": [],
            "operationId": f"plugin_{method.lower()}_{_slug(path)}", "responses": {"200": {"description": "OK"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "avatar-daemon", "version": version,
                 "description": "Research in, short talking-avatar videos out."},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "paths": paths,
    }


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
