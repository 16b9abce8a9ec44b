"""R67: every request body of the REST API goes through a serializer: no view reads
`request.data` by hand, so every field has a type, a limit and a schema (which the fuzz
test reads)."""

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "webapp" / "api"


def _reads_of_request_data(tree: ast.AST):
    """`request.data` / `self.request.data` used other than as a serializer's data=."""
    handed_over = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "data" and _is_request_data(keyword.value):
                    handed_over.add(id(keyword.value))
    for node in ast.walk(tree):
        if _is_request_data(node) and id(node) not in handed_over:
            yield node.lineno


def _is_request_data(node) -> bool:
    if not (isinstance(node, ast.Attribute) and node.attr == "data"):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "request") or (
        isinstance(owner, ast.Attribute) and owner.attr == "request"
    )


def test_no_api_view_reads_a_request_body_outside_a_serializer():
    found = {
        f"{path.name}:{line}"
        for path in sorted(API.glob("*.py"))
        for line in _reads_of_request_data(ast.parse(path.read_text()))
    }
    assert not found, f"request.data read by hand (use a serializer): {sorted(found)}"
