"""A quick JSON Schema check for the subset of keywords relrocheck's own schemas use.

jsonschema spends about half a millisecond on each entry of a large document (a policy with
15,000 `libraries` entries, a report of 30,000 symbols), which made loading them take
seconds. `quick_validator` compiles a schema once into plain functions that tell, in one
linear pass, whether a value is valid. It accepts only what jsonschema accepts (it is
stricter wherever unsure, and an integer is never a float such as 5.0); callers still run
jsonschema on every document it rejects, for the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]


def quick_validator(schema: Mapping[str, Any]) -> Check | None:
    """A function value -> valid?, or None when the schema uses a keyword not handled here."""
    return _compile(schema, schema, {})


def strict_validator(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator of `schema` for which a float such as 5.0 is not an integer
    (JSON Schema says it is; a count written as a float is a mistake, not a count)."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def first_error(schema: Mapping[str, Any], value: Any) -> tuple[str, str] | None:
    """(path as `a.b[2].c`, message) of the first error in `value`, or None when valid."""
    quick = quick_validator(schema)
    if quick is not None and quick(value):
        return None
    errors = sorted(strict_validator(schema).iter_errors(value),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return None
    error = errors[0]
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = error.message
    if len(message) > 160:
        message = message[:150] + " ..."
    return where or "(top level)", message


# Keywords the quick check below understands; a schema using any other is checked by
# jsonschema alone. Annotations (description, title...) do not constrain.
_QUICK_KEYWORDS = frozenset({
    "type", "enum", "const", "minimum", "minLength", "minItems", "minProperties", "required",
    "properties", "additionalProperties", "items", "$ref", "$defs", "$schema", "$id", "title",
    "description", "oneOf", "propertyNames"})
_JSON_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _compile(schema: Mapping[str, Any], root: Mapping[str, Any],
             compiled: dict[int, Any]) -> Check | None:
    """The check of `schema` (a part of `root`); `compiled` holds those made already, by id,
    so that a recursive $ref ends."""
    if id(schema) in compiled:
        return compiled[id(schema)]
    if not _QUICK_KEYWORDS.issuperset(schema):
        return None
    ref = schema.get("$ref")
    if ref is not None:
        if not ref.startswith("#/$defs/") or set(schema) - {"$ref", "description", "title"}:
            return None
        target = root["$defs"][ref[len("#/$defs/"):]]
        # Recursion through $ref: the lambda calls the check compiled just below.
        check: Check | None = None
        compiled[id(schema)] = lambda value: check(value)  # type: ignore[misc]
        check = _compile(target, root, compiled)
        if check is None:
            return None
        compiled[id(schema)] = check
        return check
    tests: list[Any] = []
    types = schema.get("type")
    if types is not None:
        names = (types,) if isinstance(types, str) else tuple(types)
        if any(n not in _JSON_TYPES and n not in ("integer", "number") for n in names):
            return None
        tests.append(lambda v: any(_is_type(v, t) for t in names))
    if "enum" in schema:
        options = schema["enum"]
        tests.append(lambda v: any(_same_json(v, e) for e in options))
    if "const" in schema:
        const = schema["const"]
        tests.append(lambda v: _same_json(v, const))
    if "minimum" in schema:
        low = schema["minimum"]
        tests.append(lambda v: not _is_type(v, "number") or v >= low)
    if "minLength" in schema:
        shortest = schema["minLength"]
        tests.append(lambda v: not isinstance(v, str) or len(v) >= shortest)
    if "minItems" in schema:
        fewest = schema["minItems"]
        tests.append(lambda v: not isinstance(v, list) or len(v) >= fewest)
    if "items" in schema:
        item_check = _compile(schema["items"], root, compiled)
        if item_check is None:
            return None
        tests.append(lambda v: not isinstance(v, list) or all(item_check(i) for i in v))
    if "minProperties" in schema:
        least = schema["minProperties"]
        tests.append(lambda v: not isinstance(v, dict) or len(v) >= least)
    if "required" in schema:
        required = tuple(schema["required"])
        tests.append(lambda v: not isinstance(v, dict) or all(k in v for k in required))
    if "oneOf" in schema:
        compiled_choices = [_compile(sub, root, compiled) for sub in schema["oneOf"]]
        choices = [c for c in compiled_choices if c is not None]
        if len(choices) != len(compiled_choices):
            return None
        tests.append(lambda v: sum(1 for c in choices if c(v)) == 1)
    if "propertyNames" in schema:
        name_check = _compile(schema["propertyNames"], root, compiled)
        if name_check is None:
            return None
        tests.append(lambda v: not isinstance(v, dict) or all(name_check(k) for k in v))
    if "properties" in schema or "additionalProperties" in schema:
        extra = schema.get("additionalProperties", True)
        if extra is True or extra is False:
            other: Check | None = (lambda _v: True) if extra else None
        else:
            other = _compile(extra, root, compiled)
            if other is None:
                return None
        checks = {}
        for key, sub in schema.get("properties", {}).items():
            checks[key] = _compile(sub, root, compiled)
            if checks[key] is None:
                return None

        def properties(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, item in v.items():
                check = checks.get(key, other)
                if check is None or not check(item):
                    return False
            return True

        tests.append(properties)
    result = tests[0] if len(tests) == 1 else (
        (lambda v: True) if not tests else (lambda v: all(t(v) for t in tests)))
    compiled[id(schema)] = result
    return result


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    python = _JSON_TYPES.get(name)
    return python is not None and isinstance(value, python)


def _same_json(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # stricter than JSON's 1 == 1.0: never too lenient
