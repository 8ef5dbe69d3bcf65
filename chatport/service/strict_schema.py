"""OpenAI's Structured Outputs rules for ``strict: true`` schemas, with its messages."""

from __future__ import annotations

from typing import Any

from chatport.protocol.errors import InvalidRequestError

MAX_NESTING = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000

# Keywords OpenAI's strict mode rejects.
_NOT_PERMITTED = (
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "oneOf",
    "patternProperties",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def invalid_schema(name: str, detail: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid schema for response_format '{name}': {detail}", param="response_format", code=None)


class StrictSchemaCheck:
    """OpenAI's documented Structured Outputs limits for ``strict: true``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.properties = 0
        self.enum_values = 0

    def fail(self, context: tuple[str, ...], detail: str) -> InvalidRequestError:
        return invalid_schema(self.name, f"In context={context!r}, {detail}")

    def check(self, schema: Any) -> None:
        if not isinstance(schema, dict):
            raise invalid_schema(self.name, "schema must be a JSON Schema object.")
        if schema.get("type") != "object" or "anyOf" in schema:
            got = schema.get("type", "anyOf" if "anyOf" in schema else "none")
            raise invalid_schema(self.name, f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'.")
        defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}
        self._walk(schema, (), 0)
        for key, sub in defs.items():
            self._walk(sub, ("$defs", key), 1)

    def _walk(self, node: Any, context: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, dict):
            raise self.fail(context, "schema must be an object.")
        if depth > MAX_NESTING:
            raise self.fail(context, f"the schema nests more than {MAX_NESTING} levels.")
        for keyword in _NOT_PERMITTED:
            if keyword in node:
                raise self.fail(context, f"'{keyword}' is not permitted.")
        if "enum" in node:
            self.enum_values += len(node["enum"]) if isinstance(node["enum"], list) else 0
            if self.enum_values > MAX_ENUM_VALUES:
                raise self.fail(context, f"the schema has more than {MAX_ENUM_VALUES} enum values in all.")
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in node
        if is_object and "$ref" not in node:
            self._check_object(node, context, depth)
        if isinstance(node.get("items"), dict):
            self._walk(node["items"], (*context, "items"), depth + 1)
        for i, sub in enumerate(node.get("anyOf", []) if isinstance(node.get("anyOf"), list) else []):
            self._walk(sub, (*context, "anyOf", str(i)), depth + 1)

    def _check_object(self, node: dict[str, Any], context: tuple[str, ...], depth: int) -> None:
        props = node.get("properties", {})
        if node.get("additionalProperties") is not False:
            raise self.fail(context, "'additionalProperties' is required to be supplied and to be false.")
        required = node.get("required", [])
        missing = [k for k in props if k not in required]
        if missing or not isinstance(required, list):
            raise self.fail(
                context,
                "'required' is required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0] if missing else ''}'.",
            )
        self.properties += len(props)
        if self.properties > MAX_PROPERTIES:
            raise self.fail(context, f"the schema has more than {MAX_PROPERTIES} object properties in all.")
        for key, sub in props.items():
            self._walk(sub, (*context, "properties", key), depth + 1)
