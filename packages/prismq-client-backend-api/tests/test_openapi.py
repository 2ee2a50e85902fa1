"""The OpenAPI document is complete enough to generate clients and tests from.

Every operation has a summary, a typed request body where it takes one, a schema for its
success response, its 401/403 (when it needs a token) and 422 (when it takes input)
documented as problem documents, and the bearer scheme is declared and used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import PROBLEM_JSON, Api

from prismq.api import ApiSettings, create_app

Operation = tuple[str, str, dict[str, Any]]  # method, path, operation object

#: Operations that need no token (probes for load balancers and orchestrators).
OPEN_OPERATIONS = {("get", "/healthz"), ("get", "/readyz")}
#: Request body fields that are free-form JSON by design: the handler's input.
FREE_FORM_FIELDS = {"payload"}
PROBLEM_REF = "#/components/schemas/Problem"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    document: dict[str, Any] = create_app(ApiSettings()).openapi()
    return document


def _operations(schema: dict[str, Any]) -> Iterator[Operation]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


def _is_typed(node: dict[str, Any]) -> bool:
    """True if the schema says what the value is (a type, a reference, a choice of those)."""
    if "$ref" in node or "type" in node or "enum" in node or "const" in node:
        return True
    choices: list[dict[str, Any]] = (
        node.get("anyOf") or node.get("oneOf") or node.get("allOf") or []
    )
    return bool(choices) and all(_is_typed(choice) for choice in choices)


def _is_free_form(node: dict[str, Any]) -> bool:
    """An object that accepts any members: ``{}`` or an object with no declared shape."""
    if not node:
        return True
    return (
        node.get("type") == "object"
        and not node.get("properties")
        and node.get("additionalProperties", True) in (True, {})
    )


def _untyped_fields(
    schema: dict[str, Any], node: dict[str, Any], where: str, seen: set[str]
) -> Iterator[str]:
    """Where, inside a request body schema, a value is untyped or free-form."""
    if "$ref" in node:
        if node["$ref"] in seen:
            return
        seen = seen | {node["$ref"]}
    node = _resolve(schema, node)
    field_name = where.rsplit(".", 1)[-1]
    if field_name in FREE_FORM_FIELDS:
        return
    if not _is_typed(node) or _is_free_form(node):
        yield where
        return
    for choice in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
        yield from _untyped_fields(schema, choice, where, seen)
    for name, member in node.get("properties", {}).items():
        yield from _untyped_fields(schema, member, f"{where}.{name}", seen)
    if isinstance(node.get("items"), dict):
        yield from _untyped_fields(schema, node["items"], f"{where}[]", seen)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _untyped_fields(schema, node["additionalProperties"], f"{where}.*", seen)


def _success_code(operation: dict[str, Any]) -> str:
    codes = sorted(code for code in operation["responses"] if code.startswith("2"))
    assert codes, "no success response"
    return str(codes[0])


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def _problem_schema(operation: dict[str, Any], status: str) -> dict[str, Any] | None:
    response = operation["responses"].get(status)
    if response is None:
        return None
    schema: dict[str, Any] | None = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema")
    return schema


def test_the_document_is_openapi_3_with_the_package_version(schema: dict[str, Any]) -> None:
    from prismq.api import __version__  # noqa: PLC0415

    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "PrismQ API"
    assert schema["info"]["version"] == __version__


def test_every_operation_has_a_summary_and_a_description(schema: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in _operations(schema)
        if not operation.get("summary", "").strip() or not operation.get("description", "").strip()
    ]
    assert missing == []


def test_operation_ids_are_unique(schema: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))


def test_request_bodies_are_typed_json(schema: dict[str, Any]) -> None:
    bodies = 0
    problems: list[str] = []
    for method, path, operation in _operations(schema):
        if "requestBody" not in operation:
            continue
        bodies += 1
        where = f"{method.upper()} {path}"
        content = operation["requestBody"]["content"]
        assert operation["requestBody"].get("required") is True, where
        assert set(content) == {"application/json"}, where
        body = content["application/json"]["schema"]
        assert "$ref" in body, f"{where}: the body is not a named model"
        model = _resolve(schema, body)
        assert model.get("properties"), f"{where}: the body model declares no fields"
        problems += [f"{where}: {field}" for field in _untyped_fields(schema, body, "body", set())]
    assert bodies >= 2  # enqueue and batch enqueue
    assert problems == []


def test_no_operation_without_a_body_model_reads_one(schema: dict[str, Any]) -> None:
    # A POST without a documented body must not expect one (cancel and retry take none).
    for method, path, operation in _operations(schema):
        if method == "post" and "requestBody" not in operation:
            assert path.endswith(("/cancel", "/retry")), path


def test_every_success_response_has_a_schema(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(schema):
        response = operation["responses"][_success_code(operation)]
        content = response.get("content", {})
        if not content or not all(media.get("schema") for media in content.values()):
            missing.append(f"{method.upper()} {path}")
            continue
        for media in content.values():
            if not _is_typed(_resolve(schema, media["schema"])):
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_the_bearer_scheme_is_declared(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    bearer = [
        name
        for name, scheme in schemes.items()
        if scheme == {**scheme, "type": "http", "scheme": "bearer"}
    ]
    assert bearer, schemes
    for method, path, operation in _operations(schema):
        if (method, path) in OPEN_OPERATIONS:
            assert not operation.get("security"), f"{method.upper()} {path} asks for a token"
        else:
            assert operation.get("security") == [{bearer[0]: []}], f"{method.upper()} {path}"


def test_authenticated_operations_document_401_and_403_as_problems(
    schema: dict[str, Any],
) -> None:
    undocumented = [
        f"{method.upper()} {path} {status}"
        for method, path, operation in _operations(schema)
        if (method, path) not in OPEN_OPERATIONS
        for status in ("401", "403")
        if _problem_schema(operation, status) != {"$ref": PROBLEM_REF}
    ]
    assert undocumented == []


def test_operations_that_take_input_document_422_as_a_problem(schema: dict[str, Any]) -> None:
    with_input = [op for op in _operations(schema) if _takes_input(op[2])]
    assert len(with_input) >= 8
    undocumented = [
        f"{method.upper()} {path}"
        for method, path, operation in with_input
        if _problem_schema(operation, "422") != {"$ref": PROBLEM_REF}
    ]
    assert undocumented == []


def test_every_error_response_is_a_problem_document(schema: dict[str, Any]) -> None:
    not_problems = [
        f"{method.upper()} {path} {status}"
        for method, path, operation in _operations(schema)
        for status in operation["responses"]
        if status[0] in "45" and _problem_schema(operation, status) != {"$ref": PROBLEM_REF}
    ]
    assert not_problems == []
    # FastAPI's own validation error models would mean a 422 documented the default way.
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_the_problem_schema_has_the_rfc_9457_members(schema: dict[str, Any]) -> None:
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["properties"])
    assert {"title", "status", "detail"} <= set(problem.get("required", []))


def test_every_parameter_has_a_typed_schema_and_a_description(schema: dict[str, Any]) -> None:
    problems = [
        f"{method.upper()} {path} {parameter['name']}"
        for method, path, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if not _is_typed(parameter.get("schema", {})) or not parameter.get("description")
    ]
    assert problems == []


def test_the_served_document_is_the_same(api: Api, schema: dict[str, Any]) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == schema
