"""Reads the registrations of a v2-model FunctionApp: the one route table, shared with Azure."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func


@dataclass(frozen=True)
class Registration:
    name: str
    trigger_type: str
    trigger_param: str
    user_function: Callable[..., Any]
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def wants_context(self) -> bool:
        return "context" in inspect.signature(self.user_function).parameters


@dataclass(frozen=True)
class HttpRoute:
    registration: Registration
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    auth_level: str


def registrations(app: func.FunctionApp) -> list[Registration]:
    # get_functions() builds bindings once; a second call fails unless this list is reset.
    app.functions_bindings = {}
    found = []
    for fn in app.get_functions():
        trigger, name = fn.get_trigger(), fn.get_function_name()
        assert trigger is not None and trigger.type is not None and name is not None, fn  # set by the decorators
        found.append(
            Registration(
                name=name,
                trigger_type=trigger.type,
                trigger_param=trigger.name,
                user_function=fn.get_user_function(),
                trigger=_plain(trigger.get_dict_repr()),
                bindings=[_plain(b.get_dict_repr()) for b in fn.get_bindings()],
            )
        )
    return found


def _plain(value: Any) -> Any:
    """Enum members (methods, auth levels, directions) as their string values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def http_routes(regs: list[Registration], route_prefix: str = "api") -> list[HttpRoute]:
    routes = []
    for reg in regs:
        if reg.trigger_type != "httpTrigger":
            continue
        template = reg.trigger.get("route") or reg.name
        methods = frozenset(
            m.upper()
            for m in (reg.trigger.get("methods") or ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
        )
        full = "/".join(p for p in (route_prefix.strip("/"), template.strip("/")) if p)
        routes.append(
            HttpRoute(reg, template, _compile(full), methods, str(reg.trigger.get("authLevel", "function")).lower())
        )
    # Literal segments beat parameters, as in the Functions host: fewer parameters first.
    routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
    return routes


_PARAM = re.compile(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}")
_CONSTRAINTS = {
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "int": r"-?\d+",
    "alpha": r"[A-Za-z]+",
}


def _compile(template: str) -> re.Pattern[str]:
    """Route template -> regex: {name}, {name?}, {name:guid|int|alpha}, {*catchall}."""
    out, pos = ["^/"], 0
    for match in _PARAM.finditer(template):
        out.append(re.escape(template[pos : match.start()]))
        catch_all, name, constraint, optional = match.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get(constraint or "", r"[^/]+")
        if optional:
            if out[-1].endswith("/"):
                out[-1] = out[-1][:-1]
                out.append(f"(?:/(?P<{name}>{body}))?")
            else:
                out.append(f"(?P<{name}>{body})?")
        else:
            out.append(f"(?P<{name}>{body})")
        pos = match.end()
    out.append(re.escape(template[pos:]) + "/?$")
    return re.compile("".join(out))
