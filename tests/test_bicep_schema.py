"""Bicep checked offline against Azure's own type definitions and naming rules.

`../shared/azure-types/` holds the official Bicep type definitions (Azure/bicep-types-az, the files
the Bicep compiler validates against) for every provider Folio deploys. This test walks every
resource of every `.bicep` file under `bicep/` (pycep-parser's parse tree) and checks, against them:

* the resource type exists at the API version the template names;
* every property path the template sets exists (misspellings are reported with the nearest name);
* literal values match their type: string, int (with bounds), bool, array, pattern, length, enum
  (open enums too: a value outside the listed ones is reported unless OPEN_ENUM_VALUES explains it);
* required properties are present and read-only properties are not set.

It also evaluates the templates the way ARM would for each parameter file (`bicep/params/*.json`,
plus the values the documented deploy command passes) and checks every resource name they compute
against Azure's naming rules for that type (NAME_RULES below, transcribed by hand from "Naming
rules and restrictions for Azure resources" on learn.microsoft.com; a type without an entry fails
the test until one is added), including resources behind a condition that is false in that file
(the Event Grid subscription is created in the second pass only, but its name is fixed now).

The evaluator covers what `bicep/` uses (parameters, variables, interpolation, modules and their
outputs, loops, conditionals, take/toLower/replace/uniqueString/guid/concat/union/...); anything it
cannot know before deployment (resource ids, runtime properties) is UNKNOWN and its value is not
checked. pycep-parser drops the quotes of string literals, so a bare word that names a declared
symbol is read as that symbol, any other as a literal.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parent.parent
BICEP = ROOT / "bicep"
TYPES_DIR = Path(os.environ.get("FOLIO_AZURE_TYPES", ROOT.parent / "shared" / "azure-types"))
PARAM_FILES = sorted((BICEP / "params").glob("*.parameters.json"))

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pycep") is None, reason="pip install -r bicep/requirements.txt"),
    pytest.mark.skipif(not TYPES_DIR.is_dir(), reason=f"Azure type definitions not found at {TYPES_DIR}"),
]

# Required parameters the parameter files leave to the deploy command (bicep/README.md, azure.yaml).
COMMAND_PARAMETERS = {
    "postgresAdminObjectId": "3f1d5c8e-9a41-4a55-8e43-0e9f1b7f2a10",
    "postgresAdminPrincipalName": "folio-postgres-admins",
    "azureOpenAiEndpoint": "https://folio-openai.openai.azure.com/",
}
RESOURCE_GROUP = {"name": "rg-folio", "location": "westeurope"}
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
TENANT_ID = "11111111-1111-1111-1111-111111111111"
BICEP_KEYWORDS = {"parent", "scope", "dependsOn"}

_ALNUM = "A-Za-z0-9"
# type (lower case) -> (min length, max length, full-match regex, the rule in the documentation's words).
NAME_RULES: dict[str, tuple[int, int, str, str]] = {
    "microsoft.managedidentity/userassignedidentities": (
        3,
        128,
        rf"[{_ALNUM}][{_ALNUM}_-]*",
        "alphanumerics, hyphens and underscores; start with a letter or number",
    ),
    "microsoft.operationalinsights/workspaces": (
        4,
        63,
        rf"[{_ALNUM}]([{_ALNUM}-]*[{_ALNUM}])?",
        "alphanumerics and hyphens; start and end with alphanumeric",
    ),
    "microsoft.insights/components": (
        1,
        260,
        r"[^%&\\?/\x00-\x1f]*[^%&\\?/\x00-\x1f. ]",
        "no %&\\?/ or control characters; not ending in space or period",
    ),
    "microsoft.network/virtualnetworks": (
        2,
        64,
        rf"[{_ALNUM}]([{_ALNUM}_.-]*[{_ALNUM}_])?",
        "alphanumerics, underscores, periods and hyphens; start alphanumeric, end alphanumeric or underscore",
    ),
    "microsoft.network/networksecuritygroups": (
        1,
        80,
        rf"[{_ALNUM}]([{_ALNUM}_.-]*[{_ALNUM}_])?",
        "alphanumerics, underscores, periods and hyphens; start alphanumeric, end alphanumeric or underscore",
    ),
    "microsoft.network/privatednszones": (
        1,
        253,
        rf"([{_ALNUM}_]([{_ALNUM}_-]{{0,61}}[{_ALNUM}_])?\.){{1,33}}[{_ALNUM}]([{_ALNUM}-]{{0,61}}[{_ALNUM}])?",
        "a DNS name: 2 to 34 labels of 1-63 alphanumerics, hyphens and underscores",
    ),
    "microsoft.network/privatednszones/virtualnetworklinks": (
        1,
        80,
        rf"[{_ALNUM}]([{_ALNUM}_.-]*[{_ALNUM}_])?",
        "alphanumerics, underscores, periods and hyphens; start alphanumeric, end alphanumeric or underscore",
    ),
    "microsoft.cognitiveservices/accounts": (
        2,
        64,
        rf"[{_ALNUM}]([{_ALNUM}-]*[{_ALNUM}])?",
        "alphanumerics and hyphens; start and end with alphanumeric",
    ),
    "microsoft.storage/storageaccounts": (3, 24, r"[a-z0-9]+", "lowercase letters and numbers"),
    "microsoft.storage/storageaccounts/blobservices": (7, 7, r"default", "must be 'default'"),
    "microsoft.storage/storageaccounts/managementpolicies": (7, 7, r"default", "must be 'default'"),
    "microsoft.storage/storageaccounts/blobservices/containers": (
        3,
        63,
        r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        "lowercase letters, numbers and hyphens; start and end with a letter or number; no consecutive hyphens",
    ),
    "microsoft.servicebus/namespaces": (
        6,
        50,
        rf"[A-Za-z][{_ALNUM}-]*[{_ALNUM}](?<!-sb)(?<!-mgmt)",
        "alphanumerics and hyphens; start with a letter, end with a letter or number; not ending in -sb or -mgmt",
    ),
    "microsoft.servicebus/namespaces/queues": (
        1,
        260,
        rf"[{_ALNUM}]([{_ALNUM}._/-]*[{_ALNUM}])?",
        "alphanumerics, periods, hyphens, underscores and slashes; start and end with alphanumeric",
    ),
    "microsoft.dbforpostgresql/flexibleservers": (
        3,
        63,
        r"[a-z0-9]([a-z0-9-]*[a-z0-9])?",
        "lowercase letters, numbers and hyphens; not starting or ending with a hyphen",
    ),
    "microsoft.dbforpostgresql/flexibleservers/databases": (
        1,
        63,
        rf"[A-Za-z_][{_ALNUM}_$-]*",
        "a PostgreSQL identifier: letters, digits, underscores; start with a letter or underscore",
    ),
    "microsoft.dbforpostgresql/flexibleservers/firewallrules": (
        1,
        128,
        rf"[{_ALNUM}_-]+",
        "alphanumerics, hyphens and underscores",
    ),
    "microsoft.dbforpostgresql/flexibleservers/administrators": (
        36,
        36,
        r"[0-9a-fA-F-]{36}",
        "the principal's object id",
    ),
    "microsoft.dbforpostgresql/flexibleservers/configurations": (1, 128, r"[a-z0-9_.]+", "a server parameter name"),
    "microsoft.documentdb/databaseaccounts": (
        3,
        44,
        r"[a-z0-9]([a-z0-9-]*[a-z0-9])?",
        "lowercase letters, numbers and hyphens; start and end with a lowercase letter or number",
    ),
    "microsoft.documentdb/databaseaccounts/sqldatabases": (
        1,
        255,
        r"[^/\\#?]*[^/\\#? ]",
        "no / \\ # ?; not ending in a space",
    ),
    "microsoft.documentdb/databaseaccounts/sqldatabases/containers": (
        1,
        255,
        r"[^/\\#?]*[^/\\#? ]",
        "no / \\ # ?; not ending in a space",
    ),
    "microsoft.documentdb/databaseaccounts/sqlroleassignments": (36, 36, r"[0-9a-f-]{36}", "a GUID"),
    "microsoft.keyvault/vaults": (
        3,
        24,
        rf"[A-Za-z](?!.*--)[{_ALNUM}-]*[{_ALNUM}]",
        "alphanumerics and hyphens; start with a letter, end with a letter or digit; no consecutive hyphens",
    ),
    "microsoft.appconfiguration/configurationstores": (
        5,
        50,
        rf"[{_ALNUM}](?!.*--)[{_ALNUM}-]*[{_ALNUM}]",
        "alphanumerics and hyphens; start and end with alphanumeric; no consecutive hyphens",
    ),
    "microsoft.appconfiguration/configurationstores/keyvalues": (
        1,
        1024,
        r"[^%]+\$[^%]*",
        "'<key>$<label>': no % in key or label, '.' and '..' not allowed as keys",
    ),
    "microsoft.authorization/roleassignments": (36, 36, r"[0-9a-f-]{36}", "a GUID"),
    "microsoft.web/staticsites": (
        1,
        40,
        rf"[{_ALNUM}]([{_ALNUM}-]*[{_ALNUM}])?",
        "alphanumerics and hyphens; start and end with alphanumeric",
    ),
    "microsoft.web/serverfarms": (1, 60, rf"[{_ALNUM}-]+", "alphanumerics and hyphens"),
    "microsoft.web/sites": (
        2,
        60,
        rf"[{_ALNUM}]([{_ALNUM}-]*[{_ALNUM}])?",
        "alphanumerics and hyphens; not starting or ending with a hyphen",
    ),
    "microsoft.web/sites/basicpublishingcredentialspolicies": (3, 3, r"ftp|scm", "'ftp' or 'scm'"),
    "microsoft.eventgrid/systemtopics": (3, 128, rf"[{_ALNUM}-]+", "alphanumerics and hyphens"),
    "microsoft.eventgrid/systemtopics/eventsubscriptions": (3, 64, rf"[{_ALNUM}-]+", "alphanumerics and hyphens"),
}

# (property path, value) accepted although the type files do not list the value, and why. None yet.
OPEN_ENUM_VALUES: dict[tuple[str, str], str] = {}

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Unknown:
    """A value only known at deployment time (resource ids, runtime properties)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@cache
def _parser() -> Any:
    from pycep import BicepParser

    return BicepParser()  # building the grammar takes a second: one per process


def parse(path: Path) -> dict[str, Any]:
    return _parse_text(path.read_text(encoding="utf-8"))


@cache
def _parse_text(text: str) -> dict[str, Any]:
    return cast("dict[str, Any]", _parser().parse(text=text))


def parse_expression(text: str) -> Any:
    """The parse tree of one expression inside `${...}` (pycep parses it as a variable's value)."""
    return _parse_text(f"var x = {text}\n")["variables"]["x"]["value"]


def _interpolation(text: str) -> list[str | tuple[str]]:
    """Split 'a${expr}b' into literal parts and (expr,) parts, honouring quotes and nested braces."""
    parts: list[str | tuple[str]] = []
    i, literal = 0, ""
    while i < len(text):
        if text.startswith("${", i):
            depth, j, quoted = 1, i + 2, False
            while depth:
                c = text[j]
                if c == "'":
                    quoted = not quoted
                elif not quoted and c == "{":
                    depth += 1
                elif not quoted and c == "}":
                    depth -= 1
                j += 1
            parts.extend([literal, (text[i + 2 : j - 1],)])
            literal, i = "", j
        else:
            literal += text[i]
            i += 1
    parts.append(literal)
    return parts


def _unique_string(*values: str) -> str:
    """A stand-in for uniqueString(): 13 characters of its alphabet (base32, lower case), deterministic."""
    digest = hashlib.sha256("|".join(values).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[b % 32] for b in digest[:13])


class Reference:
    """A resource or module symbol; `.name` and module outputs are computed, the rest is UNKNOWN."""

    def __init__(self, get: Any) -> None:
        self._get = get

    def attr(self, key: str) -> Any:
        return self._get(key)


@dataclass
class Resource:
    """One resource declaration as evaluated for one parameter set."""

    file: Path
    symbol: str
    type: str
    api_version: str
    existing: bool
    names: list[Any]  # one per loop item; UNKNOWN when it could not be computed
    bodies: list[dict[str, Any]]  # the evaluated body per loop item (at least one)


class Template:
    """One instantiation of a .bicep file with given parameter values."""

    def __init__(self, path: Path, args: dict[str, Any]) -> None:
        self.path = path
        self.tree = parse(path)
        self.args = args
        self._cache: dict[str, Any] = {}
        self._modules: dict[str, Template] = {}

    # --- symbols -------------------------------------------------------------------------------
    def has_symbol(self, name: str, *, values_only: bool = False) -> bool:
        kinds = ("parameters", "variables") if values_only else ("parameters", "variables", "resources", "modules")
        return any(name in self.tree.get(kind, {}) for kind in kinds)

    def symbol(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = UNKNOWN  # a cycle evaluates to UNKNOWN rather than recursing
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> Any:
        tree = self.tree
        if name in tree.get("parameters", {}):
            if name in self.args:
                return self.args[name]
            return self.eval(tree["parameters"][name].get("default"), {})
        if name in tree.get("variables", {}):
            return self.eval(tree["variables"][name]["value"], {})
        if name in tree.get("resources", {}):
            return Reference(lambda key, n=name: self._resource_attr(n, key))
        if name in tree.get("modules", {}):
            return Reference(lambda key, n=name: self._module_attr(n, key))
        raise KeyError(name)

    def _resource_attr(self, symbol: str, key: str) -> Any:
        config = self.tree["resources"][symbol]["config"]
        if "loop_type" in config:
            return UNKNOWN
        while "config" in config and "condition" in config:
            config = config["config"]
        name = self.eval(config.get("name"), {})
        if key == "name":
            return name
        if key == "id":  # shaped like an id; only ever an input of guid() or an opaque setting here
            group = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP['name']}"
            return f"{group}/providers/{self.tree['resources'][symbol]['type']}/{name}"
        return UNKNOWN

    def module(self, symbol: str) -> Template:
        if symbol not in self._modules:
            module = self.tree["modules"][symbol]
            config = module["config"]
            while "params" not in config and isinstance(config.get("config"), dict):
                config = config["config"]
            args = {k: self.eval(v, {}) for k, v in config.get("params", {}).items()}
            self._modules[symbol] = Template((self.path.parent / module["detail"]["path"]).resolve(), args)
        return self._modules[symbol]

    def _module_attr(self, symbol: str, key: str) -> Any:
        if key != "outputs":
            return UNKNOWN
        child = self.module(symbol)
        return {name: child.eval(out["value"], {}) for name, out in child.tree.get("outputs", {}).items()}

    # --- expressions ---------------------------------------------------------------------------
    def eval(self, node: Any, local: dict[str, Any], *, symbols: bool = False) -> Any:
        """The value of a parse-tree node; a bare resource or module name is a symbol only if `symbols`
        (left of a `.`), since such a bare word is otherwise a string literal that pycep unquoted."""
        if node is None or isinstance(node, bool | int | float):
            return node
        if isinstance(node, str):
            if node in local:
                return local[node]
            if IDENTIFIER.fullmatch(node) and self.has_symbol(node, values_only=not symbols):
                return self.symbol(node)
            if "${" in node:
                pieces = []
                for part in _interpolation(node):
                    value = self.eval(parse_expression(part[0]), local) if isinstance(part, tuple) else part
                    if value is UNKNOWN or isinstance(value, Reference):
                        return UNKNOWN
                    pieces.append(value if isinstance(value, str) else json.dumps(value))
                return "".join(pieces)
            return node
        if isinstance(node, list):
            return [self.eval(item, local) for item in node]
        if "operator" in node and isinstance(node["operator"], dict):
            return self._operator(node["operator"]["type"], node["operator"]["operands"], local)
        if "function" in node and isinstance(node["function"], dict):
            return self._function(node["function"], local)
        if "loop_type" in node:
            return [body for _, body in self.loop(node, local)]
        return {self._key(k, local): self.eval(v, local) for k, v in node.items()}

    def _key(self, key: str, local: dict[str, Any]) -> str:
        if key.startswith("'") and key.endswith("'"):
            value = self.eval(key[1:-1], local)
            return value if isinstance(value, str) else "<unknown key>"
        return key

    def loop(
        self, node: dict[str, Any], local: dict[str, Any], *, placeholder: bool = False
    ) -> list[tuple[dict[str, Any], Any]]:
        """(locals, evaluated body) per item that the loop's condition keeps. With `placeholder`, a loop
        over an unknown, empty or wholly filtered collection gives one body for an UNKNOWN item (marked
        in its locals), so that the body is still type-checked."""
        detail = node["loop_type"]["detail"]
        if node["loop_type"]["type"] == "array":
            items = self.eval(detail["array_name"], local)
        else:
            source = self.eval(detail["object_name"], local)
            items = [{"key": k, "value": v} for k, v in source.items()] if isinstance(source, dict) else UNKNOWN
        found = []
        for item in items if isinstance(items, list) else []:
            inner = {**local, detail["item_name"]: item}
            if detail.get("index_name"):
                inner[detail["index_name"]] = UNKNOWN
            if node.get("condition") is not None and self.eval(node["condition"], inner) is False:
                continue
            found.append((inner, self.eval(node["config"], inner)))
        if found or not placeholder:
            return found
        inner = {**local, detail["item_name"]: UNKNOWN, "<none deployed>": isinstance(items, list)}
        return [(inner, self.eval(node["config"], inner))]

    def _access(self, value: Any, path: Any, local: dict[str, Any]) -> Any:
        if isinstance(path, dict) and "operator" in path:
            op, operands = path["operator"]["type"], path["operator"]["operands"]
            if op == "property_accessor":
                return self._access(self._access(value, operands["operand_1"], local), operands["operand_2"], local)
            if op == "index_accessor":
                inner = self._access(value, operands["operand_1"], local)
                return self._index(inner, self.eval(operands["operand_2"], local))
        return self._index(value, path)

    @staticmethod
    def _index(value: Any, key: Any) -> Any:
        if isinstance(value, Reference):
            return value.attr(key)
        if isinstance(value, dict):
            return value.get(key, UNKNOWN)
        if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            return value[key]
        return UNKNOWN

    def _operator(self, op: str, operands: dict[str, Any], local: dict[str, Any]) -> Any:
        if op == "property_accessor":
            return self._access(self.eval(operands["operand_1"], local, symbols=True), operands["operand_2"], local)
        if op == "index_accessor":
            target = self.eval(operands["operand_1"], local, symbols=True)
            return self._index(target, self.eval(operands["operand_2"], local))
        if op == "conditional":
            condition = self.eval(operands["condition"], local)
            if not isinstance(condition, bool):
                return UNKNOWN
            return self.eval(operands["true_value" if condition else "false_value"], local)
        if op == "minus":
            value = self.eval(operands["integer_value"], local)
            return -value if isinstance(value, int) else UNKNOWN
        values = [self.eval(v, local) for v in operands.values()]
        if any(v is UNKNOWN or isinstance(v, Reference) for v in values):
            return UNKNOWN
        if op == "equals":
            return values[0] == values[1]
        if op == "not_equals":
            return values[0] != values[1]
        if op == "not":
            return not values[0]
        if op == "and":
            return all(values)
        if op == "or":
            return any(values)
        raise NotImplementedError(f"operator {op} (extend the evaluator in tests/test_bicep_schema.py)")

    def _function(self, fn: dict[str, Any], local: dict[str, Any]) -> Any:
        kind = fn["type"]
        if kind == "resource_group":
            group = {
                **RESOURCE_GROUP,
                "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP['name']}",
            }
            return group.get(fn.get("property_name") or "", UNKNOWN) if fn.get("property_name") else group
        if kind == "tenant":
            return TENANT_ID if "tenantId" in str(fn.get("property_name")) else UNKNOWN
        args = [self.eval(v, local) for v in (fn.get("parameters") or {}).values()]
        if kind in ("guid", "unique_string"):  # the shape of the result does not depend on the inputs
            text = [a if isinstance(a, str) else repr(a) for a in args if a is not None]
            return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(text))) if kind == "guid" else _unique_string(*text)
        if any(a is UNKNOWN or isinstance(a, Reference) for a in args if a is not None):
            return UNKNOWN
        given = [a for a in args if a is not None]
        if kind == "take":
            return given[0][: given[1]]
        if kind == "to_lower":
            return given[0].lower()
        if kind == "to_upper":
            return given[0].upper()
        if kind == "replace":
            return given[0].replace(given[1], given[2])
        if kind == "concat":
            return [x for a in given for x in a] if isinstance(given[0], list) else "".join(map(str, given))
        if kind == "union":
            merged: dict[str, Any] = {}
            for a in given:
                merged.update(a)
            return merged
        if kind == "empty":
            return not given[0]
        if kind == "string":
            return given[0] if isinstance(given[0], str) else json.dumps(given[0])
        if kind == "first":
            return given[0][0] if given[0] else None
        if kind == "split":
            return given[0].split(given[1])
        if kind == "subscription_resource_id":
            rtype, *names = given
            return f"/subscriptions/{SUBSCRIPTION_ID}/providers/{rtype}/" + "/".join(names)
        raise NotImplementedError(f"function {kind} (extend the evaluator in tests/test_bicep_schema.py)")

    # --- resources -----------------------------------------------------------------------------
    def resources(self) -> Iterator[Resource]:
        """Every resource of this file and of the modules it calls, evaluated with these arguments."""
        for symbol, resource in self.tree.get("resources", {}).items():
            config = resource["config"]
            none_deployed = False
            if "loop_type" in config:
                looped = self.loop(config, {}, placeholder=True)
                evaluated = [body for _, body in looped]
                none_deployed = looped[0][0].get("<none deployed>", False)  # then there is no name to check
            else:
                while "config" in config and "condition" in config and "loop_type" not in config:
                    config = config["config"]  # a condition false here still has its name fixed now
                evaluated = [self.eval(config, {})]
            yield Resource(
                file=self.path,
                symbol=symbol,
                type=resource["type"],
                api_version=resource["api_version"],
                existing=bool(resource.get("existing")),
                names=[]
                if none_deployed
                else [b.get("name", UNKNOWN) if isinstance(b, dict) else UNKNOWN for b in evaluated],
                bodies=[body for body in evaluated if isinstance(body, dict)],
            )
        for symbol in self.tree.get("modules", {}):
            yield from self.module(symbol).resources()


# --- type definitions --------------------------------------------------------------------------
@cache
def type_index() -> dict[str, tuple[Path, int]]:
    """'namespace/type@api-version' (lower case) -> (types.json, index of its ResourceType)."""
    index = {}
    for path in sorted(TYPES_DIR.glob("*/*/*/types.json")):
        for i, element in enumerate(load_types(path)):
            if element["$type"] == "ResourceType":
                index[element["name"].lower()] = (path, i)
    return index


@cache
def load_types(path: Path) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", json.loads(path.read_text(encoding="utf-8")))


def _ref(ref: dict[str, str]) -> int:
    return int(ref["$ref"].split("/")[-1])


def _literals(types: list[dict[str, Any]], t: dict[str, Any]) -> list[str]:
    return [types[_ref(e)]["value"] for e in t["elements"] if types[_ref(e)]["$type"] == "StringLiteralType"]


def check_value(types: list[dict[str, Any]], index: int, value: Any, path: str, problems: list[str]) -> None:
    """Append to problems whatever in value (an evaluated template value) the type at index rejects."""
    if value is None or value is UNKNOWN or isinstance(value, Reference):
        return
    t = types[index]
    kind = t["$type"]
    if kind in ("AnyType", "ResourceFunctionType"):
        return
    if kind == "StringType":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
            return
        if ("minLength" in t and len(value) < t["minLength"]) or ("maxLength" in t and len(value) > t["maxLength"]):
            problems.append(
                f"{path}: {value!r} has {len(value)} characters ({t.get('minLength')}-{t.get('maxLength')})"
            )
        if t.get("pattern") and not re.search(t["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {t['pattern']}")
    elif kind == "StringLiteralType":
        if value != t["value"]:
            problems.append(f"{path}: {value!r} is not {t['value']!r}")
    elif kind == "IntegerType":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an integer")
        elif ("minValue" in t and value < t["minValue"]) or ("maxValue" in t and value > t["maxValue"]):
            problems.append(f"{path}: {value} is outside {t.get('minValue')}..{t.get('maxValue')}")
    elif kind == "BooleanType":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a bool")
    elif kind == "ArrayType":
        if not isinstance(value, list):
            problems.append(f"{path}: {value!r} is not an array")
            return
        for i, item in enumerate(value):
            check_value(types, _ref(t["itemType"]), item, f"{path}[{i}]", problems)
    elif kind == "UnionType":
        literals = _literals(types, t)
        if literals and isinstance(value, str) and value not in literals:
            # Most Azure enums are "open" (the union also holds a plain string, so Bicep accepts any
            # value and the resource provider decides). A value outside the known ones is far more
            # often a typo than a value the type files do not know yet: it is reported either way,
            # unless OPEN_ENUM_VALUES names it with a reason.
            if OPEN_ENUM_VALUES.get((path, value)) is None:
                problems.append(f"{path}: {value!r} is not one of {literals}")
            return
        attempts = []
        for element in t["elements"]:
            found: list[str] = []
            check_value(types, _ref(element), value, path, found)
            if not found:
                return
            attempts.append(found)
        literals = _literals(types, t)
        if literals and isinstance(value, str):
            problems.append(f"{path}: {value!r} is not one of {literals}")
        else:
            problems.append(min(attempts, key=len)[0] if attempts else f"{path}: {value!r} matches no element")
    elif kind == "ObjectType":
        check_object(types, t.get("properties", {}), t.get("additionalProperties"), value, path, problems)
    elif kind == "DiscriminatedObjectType":
        if not isinstance(value, dict):
            problems.append(f"{path}: {value!r} is not an object")
            return
        tag = value.get(t["discriminator"])
        if tag is UNKNOWN:
            return
        if tag not in t["elements"]:
            problems.append(f"{path}.{t['discriminator']}: {tag!r} is not one of {sorted(t['elements'])}")
            return
        element = types[_ref(t["elements"][tag])]
        merged = {**t.get("baseProperties", {}), **element.get("properties", {})}
        check_object(types, merged, element.get("additionalProperties"), value, path, problems)
    else:
        raise NotImplementedError(kind)


def check_object(
    types: list[dict[str, Any]],
    properties: dict[str, Any],
    additional: dict[str, str] | None,
    value: Any,
    path: str,
    problems: list[str],
) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: {value!r} is not an object")
        return
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key in properties:
            flags = properties[key].get("flags", 0)
            if flags & 2 and not flags & 1:
                problems.append(f"{where}: read-only property is set")
            check_value(types, _ref(properties[key]["type"]), item, where, problems)
        elif additional is not None:
            check_value(types, _ref(additional), item, where, problems)
        else:
            near = difflib.get_close_matches(key, list(properties), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"{where}: no such property{hint}")
    for key, prop in properties.items():
        if prop.get("flags", 0) & 1 and key not in value:
            problems.append(f"{path + '.' if path else ''}{key}: required property is missing")


# --- running the checks ------------------------------------------------------------------------
def parameter_sets(bicep_dir: Path) -> dict[str, dict[str, Any]]:
    sets = {}
    for path in sorted((bicep_dir / "params").glob("*.parameters.json")):
        values = json.loads(path.read_text(encoding="utf-8"))["parameters"]
        sets[path.name.split(".")[0]] = {**COMMAND_PARAMETERS, **{k: v["value"] for k, v in values.items()}}
    return sets


def deployment(bicep_dir: Path, env: str) -> list[Resource]:
    return list(Template(bicep_dir / "main.bicep", parameter_sets(bicep_dir)[env]).resources())


def schema_problems(bicep_dir: Path) -> list[str]:
    """Type, API version and property findings for every resource, under every parameter set."""
    problems: set[str] = set()
    index = type_index()
    for env in parameter_sets(bicep_dir):
        for resource in deployment(bicep_dir, env):
            where = f"{resource.file.relative_to(bicep_dir.parent)} {resource.symbol} ({resource.type}@{resource.api_version})"
            key = f"{resource.type}@{resource.api_version}".lower()
            if key not in index:
                versions = sorted(k.split("@")[1] for k in index if k.split("@")[0] == resource.type.lower())
                problems.add(f"{where}: no such resource type at this API version (stored: {versions})")
                continue
            if resource.existing:
                continue
            types_path, i = index[key]
            types = load_types(types_path)
            body = _ref(types[i]["body"])
            for value in resource.bodies:
                found: list[str] = []
                check_value(types, body, {k: v for k, v in value.items() if k not in BICEP_KEYWORDS}, "", found)
                problems.update(f"{where}: {p}" for p in found)
    return sorted(problems)


def naming_problems(bicep_dir: Path) -> list[str]:
    problems = []
    for env in parameter_sets(bicep_dir):
        for resource in deployment(bicep_dir, env):
            if resource.existing:
                continue
            where = f"[{env}] {resource.file.relative_to(bicep_dir.parent)} {resource.symbol} ({resource.type})"
            rule = NAME_RULES.get(resource.type.lower())
            if rule is None:
                problems.append(f"{where}: no naming rule known for this type (add it to NAME_RULES)")
                continue
            low, high, pattern, words = rule
            for name in resource.names:
                if not isinstance(name, str):
                    problems.append(f"{where}: the name could not be computed offline ({name!r})")
                elif not low <= len(name) <= high or not re.fullmatch(pattern, name):
                    problems.append(
                        f"{where}: name {name!r} ({len(name)} characters) breaks the rule: {low}-{high}, {words}"
                    )
    return problems


def test_every_resource_type_and_property_exists_in_azure_types() -> None:
    problems = schema_problems(BICEP)
    assert not problems, "Bicep does not match Azure's type definitions:\n" + "\n".join(problems)


def test_every_computed_resource_name_follows_azure_naming_rules() -> None:
    problems = naming_problems(BICEP)
    assert not problems, "resource names Azure would reject:\n" + "\n".join(problems)


def test_every_parameter_file_computes_every_name() -> None:
    """The naming test sees every resource: each parameter set yields a name for each one."""
    for env in parameter_sets(BICEP):
        resources = [r for r in deployment(BICEP, env) if not r.existing]
        assert len(resources) > 30, f"{env}: only {len(resources)} resources found"
        types = {r.type for r in resources}
        assert "Microsoft.EventGrid/systemTopics/eventSubscriptions" in types


# --- the checker can fail ----------------------------------------------------------------------
@pytest.fixture
def bicep_copy(tmp_path: Path) -> Path:
    target = tmp_path / "bicep"
    shutil.copytree(BICEP, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_checker_reports_a_misspelt_property(bicep_copy: Path) -> None:
    _edit(bicep_copy / "modules" / "servicebus.bicep", "requiresDuplicateDetection:", "requiresDuplicateDetecton:")
    problems = schema_problems(bicep_copy)
    assert any(
        "requiresDuplicateDetecton: no such property (did you mean 'requiresDuplicateDetection'?)" in p
        for p in problems
    ), problems


def test_checker_reports_a_value_outside_the_enum(bicep_copy: Path) -> None:
    _edit(
        bicep_copy / "modules" / "cosmos.bicep",
        "defaultConsistencyLevel: 'Session'",
        "defaultConsistencyLevel: 'Sesion'",
    )
    problems = schema_problems(bicep_copy)
    assert any("defaultConsistencyLevel: 'Sesion' is not one of" in p for p in problems), problems


def test_checker_reports_a_value_outside_an_open_enum(bicep_copy: Path) -> None:
    """minimumTlsVersion's type also allows any string; 'TLS12' is still a typo of 'TLS1_2'."""
    _edit(bicep_copy / "modules" / "storage.bicep", "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS12'")
    problems = schema_problems(bicep_copy)
    assert any("properties.minimumTlsVersion: 'TLS12' is not one of" in p for p in problems), problems


def test_checker_reports_an_unknown_api_version(bicep_copy: Path) -> None:
    _edit(bicep_copy / "modules" / "identity.bicep", "@2023-01-31", "@2023-01-30")
    problems = schema_problems(bicep_copy)
    assert any("userAssignedIdentities@2023-01-30): no such resource type at this API version" in p for p in problems)


def test_checker_reports_an_underscore_in_an_event_subscription_name(bicep_copy: Path) -> None:
    """The name bicep/ had before #13: `on_blob_event` put an underscore into it."""
    _edit(
        bicep_copy / "modules" / "eventgrid.bicep",
        "name: 'uploads-to-${replace(functionName, '_', '-')}'",
        "name: 'uploads-to-${functionName}'",
    )
    problems = naming_problems(bicep_copy)
    assert any("name 'uploads-to-on_blob_event'" in p and "eventSubscriptions" in p for p in problems), problems


def test_checker_reports_a_storage_name_too_long(bicep_copy: Path) -> None:
    _edit(
        bicep_copy / "main.bicep",
        "take('st${replace(baseName, '-', '')}${environmentName}${suffix}', 24)",
        "'st${baseName}${environmentName}${suffix}${suffix}${suffix}${suffix}'",
    )
    problems = naming_problems(bicep_copy)
    assert any("Microsoft.Storage/storageAccounts): name" in p for p in problems), problems


def test_checker_reads_a_read_only_property_and_a_missing_required_one(bicep_copy: Path) -> None:
    _edit(
        bicep_copy / "modules" / "identity.bicep",
        "  tags: tags\n}",
        "  tags: tags\n  properties: {\n    clientId: 'x'\n  }\n}",
    )
    _edit(bicep_copy / "modules" / "storage.bicep", "  kind: 'StorageV2'\n", "")
    problems = schema_problems(bicep_copy)
    assert any("properties.clientId: read-only property is set" in p for p in problems), problems
    assert any("storageAccounts@2023-05-01): kind: required property is missing" in p for p in problems), problems
