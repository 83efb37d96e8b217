"""The OpenAPI document, built from the same endpoint table the server registers, so it cannot drift.

Every status a route can answer is listed with its body; tests/test_openapi.py holds the
running server to it with schemathesis.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from .common import Answer, Endpoint
from .replies import ErrorReply

ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}


def document(endpoints: list[Endpoint], plugin_routes: list[tuple[str, str]], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        if model.__name__ not in schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for e in endpoints:
        answers = {code: a if isinstance(a, Answer) else Answer(a) for code, a in e.responses.items()}
        names = re.findall(r"{(\w+)}", e.path)
        # What every route of its kind answers, beyond what its handler says itself.
        if e.auth:
            answers.setdefault(401, Answer("no bearer token, or one not in users.yaml"))
        if e.body is not None:
            answers.setdefault(400, Answer("the body is not a JSON object"))
            answers.setdefault(413, Answer("the body is over the size limit"))
            answers.setdefault(422, Answer("a field is invalid: `field` names it"))
        if names:
            answers.setdefault(404, Answer(f"no such {' or '.join(names)}"))
        answers.setdefault(400, Answer("a query parameter is unknown or invalid: `field` names it"))
        op: dict[str, Any] = {"summary": e.summary, "operationId": f"{e.method.lower()}_{_slug(e.path)}",
                              "responses": {str(code): _response(code, a, ref) for code, a in sorted(answers.items())}}
        params = [{"name": n, "in": "path", "required": True, "schema": _path_schema(e.path, n)} for n in names]
        params += [{"name": n, "in": "query", "required": False, "description": s.get("description", ""),
                    "schema": {k: v for k, v in s.items() if k != "description"}} for n, s in e.query.items()]
        params += [{"name": n, "in": "header", "required": False, "description": s.get("description", ""),
                    "schema": {k: v for k, v in s.items() if k != "description"}} for n, s in e.headers.items()]
        if params:
            op["parameters"] = params
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(e.body)}}}
        if e.upload is not None:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": [e.upload],
                "properties": {e.upload: {"type": "string", "format": "binary"}}}}}}
        if not e.auth:
            op["security"] = []
        paths.setdefault(e.path, {})[e.method.lower()] = op
    for method, path in plugin_routes:
        paths.setdefault(path, {})[method.lower()] = {
            "summary": "a plugin's route (its own authentication and answers)", "security": [],
            "operationId": f"plugin_{method.lower()}_{_slug(path)}",
            "responses": {"default": {"description": "whatever the plugin answers"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "avatar-daemon", "version": version,
                 "description": "Research in, short talking-avatar videos out."},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "paths": paths,
    }


def _response(code: int, answer: Answer, ref) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if code == 101 or not answer.media:
        return out
    if answer.media != ("application/json",):
        out["content"] = {m: {"schema": {"type": "string"} if m.startswith("text/") else
                              {"type": "string", "format": "binary"}} for m in answer.media}
        return out
    model = answer.model or (ErrorReply if code >= 400 else None)
    out["content"] = {"application/json": {"schema": ref(model) if model else {"type": "object"}}}
    return out


def _path_schema(path: str, name: str) -> dict[str, Any]:
    """A video's id is a store id (a positive 64-bit integer); an avatar's or campaign's is a name."""
    if name == "id" and path.startswith("/videos/"):
        return dict(ID)
    if name == "kind" and "/files/" in path:
        return {"type": "string", "enum": ["thumbnail", "captions.srt", "captions.vtt"]}
    if name == "kind":
        return {"type": "string", "enum": ["jpg", "mp4"]}
    return {"type": "string", "minLength": 1}


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
