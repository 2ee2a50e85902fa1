"""The REST reference, rendered from the application's own OpenAPI document.

The application is built with the default settings (never the builder's environment, which
could change the documented limits). Building it opens no database. The scope each route
demands is not in the OpenAPI document (the bearer scheme has no scopes), so it is read
from the routes' dependencies: the ``Scope`` that ``prismq.api.dependencies.require``
closed over.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from typing import Any

import prismq_docs_markdown as md
from fastapi import FastAPI
from fastapi.routing import APIRoute

from prismq.api.app import create_app
from prismq.api.auth import Scope
from prismq.api.settings import ApiSettings

#: Patterns longer than this are left to ``openapi.json``: they are unreadable inline.
_MAX_PATTERN_SHOWN = 40
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Schema = Mapping[str, Any]


def default_app() -> FastAPI:
    """The application with every setting at its default, whatever the environment says."""
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in ApiSettings.model_fields.items()
    }
    return create_app(ApiSettings(**defaults))


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document the application serves at ``/openapi.json``."""
    return app.openapi()


# -- scopes ------------------------------------------------------------------------------


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # an included router
        if included is not None:
            yield from _api_routes(list(included.routes))


def _scopes_of(dependant: Any) -> set[Scope]:
    found: set[Scope] = set()
    call = getattr(dependant, "call", None)
    if call is not None and inspect.isfunction(call):
        captured = inspect.getclosurevars(call).nonlocals.values()
        found |= {value for value in captured if isinstance(value, Scope)}
    for child in getattr(dependant, "dependencies", []):
        found |= _scopes_of(child)
    return found


def route_scopes(app: FastAPI) -> dict[tuple[str, str], set[Scope]]:
    """``{(METHOD, path): scopes}`` the routes demand of a token."""
    scopes: dict[tuple[str, str], set[Scope]] = {}
    for route in _api_routes(list(app.router.routes)):
        for method in route.methods or ():
            scopes[(method.upper(), route.path)] = _scopes_of(route.dependant)
    return scopes


# -- schemas -----------------------------------------------------------------------------


def schema_link(name: str) -> str:
    """A link to the section that renders component schema ``name``."""
    return f"[`{name}`](#schema-{md.slug(name)})"


def type_of(schema: Schema) -> str:
    """A short Markdown description of a JSON Schema's type, linking named schemas."""
    composed = _composed_type(schema)
    return composed if composed is not None else _plain_type(schema)


def _composed_type(schema: Schema) -> str | None:
    """A reference, a combination of schemas, or an enumeration; None for anything else."""
    if "$ref" in schema:
        return schema_link(str(schema["$ref"]).rsplit("/", 1)[-1])
    for combinator, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            return joiner.join(type_of(option) for option in schema[combinator])
    if "enum" in schema:
        return "one of " + ", ".join(md.code(json.dumps(value)) for value in schema["enum"])
    if "const" in schema:
        return md.code(json.dumps(schema["const"]))
    return None


def _plain_type(schema: Schema) -> str:
    """A schema's ``type`` keyword (one or several), with its items, values or format."""
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(type_of({**schema, "type": one}) for one in kind)
    if kind == "array":
        items = schema.get("items")
        return "array of " + (type_of(items) if isinstance(items, Mapping) else "any")
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, Mapping) and values:
            return "object of " + type_of(values)
        return "object"
    if kind is None:
        return "any JSON value"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _branches(schema: Schema) -> Iterator[Schema]:
    yield schema
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(combinator, []):
            yield from _branches(option)


def constraints(schema: Schema) -> str:
    """Bounds, lengths and patterns of ``schema`` and its alternatives."""
    found: list[str] = []
    words = {
        "minimum": "≥ {}",
        "exclusiveMinimum": "> {}",
        "maximum": "≤ {}",
        "exclusiveMaximum": "< {}",
        "minLength": "length ≥ {}",
        "maxLength": "length ≤ {}",
        "minItems": "items ≥ {}",
        "maxItems": "items ≤ {}",
    }
    for branch in _branches(schema):
        for keyword, template in words.items():
            if keyword in branch:
                found.append(template.format(md.number(branch[keyword])))
        pattern = branch.get("pattern")
        if isinstance(pattern, str):
            found.append(
                f"pattern {md.code(pattern)}"
                if len(pattern) <= _MAX_PATTERN_SHOWN
                else "a pattern (see `openapi.json`)"
            )
    return ", ".join(dict.fromkeys(found))


def _default(schema: Schema) -> str:
    return md.code(json.dumps(schema["default"])) if "default" in schema else ""


def schema_section(name: str, schema: Schema) -> str:
    """One component schema: its description and a table of its fields."""
    parts = [f"### `{name}` {{#schema-{md.slug(name)}}}"]
    if schema.get("description"):
        parts.append(md.text(str(schema["description"])))
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if not properties:
        parts.append(f"Type: {type_of({k: v for k, v in schema.items() if k != 'title'})}.")
        return "\n\n".join(parts)
    required = set(schema.get("required", []))
    rows = [
        [
            md.code(field),
            type_of(spec),
            "yes" if field in required else "no",
            _default(spec),
            constraints(spec),
            md.text(str(spec.get("description", ""))),
        ]
        for field, spec in properties.items()
    ]
    parts.append(md.table(["field", "type", "required", "default", "constraints", "meaning"], rows))
    extra = schema.get("additionalProperties")
    if extra is False:
        parts.append("Fields not listed here are refused.")
    forbidden = schema.get("not", {}).get("required")
    if forbidden:
        together = " and ".join(md.code(field) for field in forbidden)
        parts.append(f"{together} must not be given together.")
    return "\n\n".join(parts)


# -- operations --------------------------------------------------------------------------


def operations(document: Schema) -> Iterator[tuple[str, str, Schema]]:
    """``(METHOD, path, operation)`` in the document's order."""
    for path, item in document.get("paths", {}).items():
        for method in _HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def auth_line(operation: Schema, scopes: set[Scope]) -> str:
    """Who may call the operation: no token, or a bearer token with the scopes named."""
    if not operation.get("security"):
        return "**Auth:** none (no token needed)."
    if not scopes:
        return "**Auth:** bearer token."
    named = " or ".join(md.code(scope.value) for scope in sorted(scopes, key=str))
    return f"**Auth:** bearer token with scope {named} (or `admin`)."


def operation_section(
    method: str, path: str, operation: Schema, scopes: set[Scope], anchor: str
) -> str:
    """One operation: summary, description, auth, parameters, body and responses."""
    parts = [f"### {operation.get('summary', path)} {{#{anchor}}}", f"`{method} {path}`"]
    if operation.get("description"):
        parts.append(str(operation["description"]))
    parts.append(auth_line(operation, scopes))
    parameters = operation.get("parameters", [])
    if parameters:
        rows = [
            [
                md.code(parameter["name"]),
                parameter.get("in", ""),
                type_of(parameter.get("schema", {})),
                "yes" if parameter.get("required") else "no",
                _default(parameter.get("schema", {})),
                constraints(parameter.get("schema", {})),
                md.text(str(parameter.get("description", ""))),
            ]
            for parameter in parameters
        ]
        header = ["parameter", "in", "type", "required", "default", "constraints", "meaning"]
        parts.append("**Parameters**\n\n" + md.table(header, rows))
    body = operation.get("requestBody")
    if body:
        lines = [
            f"- {md.code(media)}: {type_of(content.get('schema', {}))}"
            for media, content in body.get("content", {}).items()
        ]
        required = "required" if body.get("required") else "optional"
        parts.append(f"**Request body** ({required})\n\n" + "\n".join(lines))
    rows = []
    for status, response in sorted(operation.get("responses", {}).items()):
        content = response.get("content", {})
        media = ", ".join(md.code(name) for name in content) or "—"
        shown = ", ".join(type_of(spec.get("schema", {})) for spec in content.values()) or "—"
        rows.append([f"**{status}**", md.text(response.get("description", "")), media, shown])
    parts.append("**Responses**\n\n" + md.table(["status", "when", "content", "body"], rows))
    return "\n\n".join(parts)


def reference(app: FastAPI, document: Schema) -> str:
    """Every operation, grouped by tag, then every component schema."""
    scopes = route_scopes(app)
    tags: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    summary_rows = []
    for method, path, operation in operations(document):
        anchor = f"op-{md.slug(operation.get('operationId', f'{method} {path}'))}"
        needed = scopes.get((method, path), set())
        section = operation_section(method, path, operation, needed, anchor)
        tag = (operation.get("tags") or ["other"])[0]
        tags.setdefault(tag, []).append(section)
        scope_cell = (
            ", ".join(md.code(scope.value) for scope in sorted(needed, key=str))
            if operation.get("security")
            else "none"
        )
        summary_rows.append(
            [f"[`{method} {path}`](#{anchor})", md.text(operation.get("summary", "")), scope_cell]
        )
    descriptions = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    parts = [
        "## Operations",
        md.table(["operation", "does", "scope"], summary_rows),
    ]
    for tag, sections in tags.items():
        if sections:
            parts.append(f"## {tag.capitalize()} {{#tag-{md.slug(tag)}}}")
            if descriptions.get(tag):
                parts.append(md.text(descriptions[tag]))
            parts.extend(sections)
    parts.append("## Schemas")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        parts.append(schema_section(name, schema))
    return "\n\n".join(parts)


def unscoped_operations(app: FastAPI, document: Schema) -> list[str]:
    """Operations that need a token but whose route names no scope: the docs would lie."""
    scopes = route_scopes(app)
    return [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if operation.get("security") and not scopes.get((method, path))
    ]
