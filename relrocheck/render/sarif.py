"""SARIF 2.1.0 for code scanning: each finding on its declaration's source line.

GitHub code scanning (and other SARIF viewers) annotate `physicalLocation` in the pull
request: the declaration's file relative to the source root (`--source-root`, default the
current folder; `originalUriBaseIds.SRCROOT` records it) and `region.startLine` from DWARF.
Without a source line the library file is the location and also a related location, so
that the result still names what to look at.
"""

from __future__ import annotations

import os
from typing import Any, Iterable
from urllib.parse import quote

from relrocheck import __version__
from relrocheck.render.findings import Finding, library_location

# The official schema's id (OASIS SARIF 2.1.0, errata 01).
SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")


def _uri(path: str) -> str:
    """A relative path as a relative URI reference; an absolute one as a file: URI."""
    if os.path.isabs(path):
        return "file://" + quote(path)
    return quote(path.replace(os.sep, "/"))


def _artifact(path: str) -> dict[str, Any]:
    location: dict[str, Any] = {"uri": _uri(path)}
    if not os.path.isabs(path):
        location["uriBaseId"] = "SRCROOT"
    return location


def _rule_description(rule_id: str) -> str:
    from relrocheck.hints import HINT_KINDS

    if rule_id in HINT_KINDS:
        return HINT_KINDS[rule_id]
    return f"relrocheck check: {rule_id.replace('/', ' ')} (see `relrocheck check --help`)"


def _result(f: Finding, rule_index: int, root: str) -> dict[str, Any]:
    library = {"physicalLocation": {"artifactLocation": _artifact(library_location(f, root))},
               "message": {"text": f"the library {f.library_name}"}}
    result: dict[str, Any] = {"ruleId": f.rule_id, "ruleIndex": rule_index, "level": f.level,
                              "message": {"text": f.message}}
    if f.source_file is not None and f.line is not None:
        location: dict[str, Any] = {"physicalLocation": {
            "artifactLocation": _artifact(f.source_file), "region": {"startLine": f.line}}}
    else:
        location = {"physicalLocation": library["physicalLocation"]}
    result["relatedLocations"] = [{"id": 1, **library}]
    if f.symbol is not None:
        location["logicalLocations"] = [{"name": f.symbol, "kind": "variable"}]
    result["locations"] = [location]
    result["partialFingerprints"] = {
        "relrocheck/v1": f"{f.library_name}|{f.rule_id}|{f.symbol or ''}|{f.metric or ''}"}
    properties: dict[str, Any] = {"library": f.library_name}
    if f.violation is not None:
        properties["violation"] = f.violation
    if f.hint_kind is not None:
        properties["hint"] = f.hint_kind
    result["properties"] = properties
    return result


def to_sarif(findings: Iterable[Finding], root: str) -> dict[str, Any]:
    findings = list(findings)
    rule_ids = list(dict.fromkeys(f.rule_id for f in findings))
    rules = [{"id": r, "shortDescription": {"text": r},
              "fullDescription": {"text": _rule_description(r)}} for r in rule_ids]
    index = {r: i for i, r in enumerate(rule_ids)}
    root_uri = "file://" + quote(os.path.abspath(root).rstrip("/") + "/")
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "relrocheck", "version": __version__,
                                "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": root_uri}},
            "results": [_result(f, index[f.rule_id], root) for f in findings],
        }],
    }
