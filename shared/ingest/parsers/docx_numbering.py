"""Word's automatic numbering rendered as Word shows it: "1.", "1.1", "(a)", with restarts and overrides.

Clause numbers of most Word contracts are not in the text: a paragraph (or its style) names a
numbering instance (``w:numId``) and a level (``w:ilvl``), and ``numbering.xml`` says how that
level is counted and drawn (``w:start``, ``w:numFmt``, ``w:lvlText`` such as ``"%1.%2"``). Counters
belong to the abstract definition, so instances that share one continue each other's count unless
an instance overrides a level's start, which restarts that level where the instance is first used.
A level restarts whenever a higher level advances (``w:lvlRestart`` can say otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from docx.oxml.ns import qn

_VAL = qn("w:val")
_MAX_LEVELS = 9
# "aaaa…" grows with the count; a hostile w:start must not make a label megabytes long.
_MAX_LETTER_VALUE = 26 * 8
_ROMAN = (
    (1000, "m"),
    (900, "cm"),
    (500, "d"),
    (400, "cd"),
    (100, "c"),
    (90, "xc"),
    (50, "l"),
    (40, "xl"),
    (10, "x"),
    (9, "ix"),
    (5, "v"),
    (4, "iv"),
    (1, "i"),
)


@dataclass(slots=True)
class _Level:
    start: int = 1
    fmt: str = "decimal"
    text: str = ""
    legal: bool = False
    restart: int | None = None  # None: after any higher level; 0: never; n: after level n-1
    suffix: str = " "
    style: str | None = None


@dataclass(slots=True)
class _Instance:
    abstract: str
    levels: dict[int, _Level]
    start_overrides: dict[int, int] = field(default_factory=dict)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _child_val(element: Any, tag: str) -> str | None:
    child = element.find(qn(tag))
    return None if child is None else child.get(_VAL)


def _parse_level(lvl: Any, base: _Level | None = None) -> _Level:
    level = _Level() if base is None else replace(base)
    if (start := _child_val(lvl, "w:start")) is not None:
        level.start = _int(start, 1)
    if (fmt := _child_val(lvl, "w:numFmt")) is not None:
        level.fmt = fmt
    if (text := _child_val(lvl, "w:lvlText")) is not None:
        level.text = text
    legal = lvl.find(qn("w:isLgl"))
    if legal is not None:
        level.legal = legal.get(_VAL) not in ("0", "false", "off")
    if (restart := _child_val(lvl, "w:lvlRestart")) is not None:
        level.restart = _int(restart, 1)
    if (suffix := _child_val(lvl, "w:suff")) is not None:
        level.suffix = "" if suffix == "nothing" else " "
    if (style := _child_val(lvl, "w:pStyle")) is not None:
        level.style = style
    return level


def _format(value: int, fmt: str) -> str | None:
    """One counter drawn in a number format; None for bullets (no label worth text)."""
    if fmt == "bullet":
        return None
    if fmt == "none":
        return ""
    if fmt in ("lowerLetter", "upperLetter") and 0 < value <= _MAX_LETTER_VALUE:
        letter = chr(ord("a") + (value - 1) % 26) * ((value - 1) // 26 + 1)  # z, aa, bb, ...
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman") and 0 < value < 5000:
        out, rest = [], value
        for amount, numeral in _ROMAN:
            while rest >= amount:
                out.append(numeral)
                rest -= amount
        roman = "".join(out)
        return roman.upper() if fmt == "upperRoman" else roman
    if fmt == "decimalZero":
        return f"{value:02d}"
    return str(value)  # decimal, and the rarer formats (ordinal, cardinalText...) drawn as numbers


class Numbering:
    """Labels for numbered paragraphs, in document order (it keeps the running counters)."""

    def __init__(self, numbering_xml: Any | None, style_numbering: dict[str, tuple[str | None, int | None]]) -> None:
        self._abstract_levels: dict[str, dict[int, _Level]] = {}
        self._instances: dict[str, _Instance] = {}
        self._style_numbering = style_numbering
        self._counters: dict[str, list[int | None]] = {}
        self._started: set[str] = set()
        if numbering_xml is not None:
            self._read(numbering_xml)

    def _read(self, root: Any) -> None:
        links: dict[str, str] = {}
        for abstract in root.iterchildren(qn("w:abstractNum")):
            ident = abstract.get(qn("w:abstractNumId")) or ""
            levels = {}
            for lvl in abstract.iterchildren(qn("w:lvl")):
                index = _int(lvl.get(qn("w:ilvl")), 0)
                if 0 <= index < _MAX_LEVELS:
                    levels[index] = _parse_level(lvl)
            self._abstract_levels[ident] = levels
            link = _child_val(abstract, "w:numStyleLink")
            if link:
                links[ident] = link
        for num in root.iterchildren(qn("w:num")):
            ident = num.get(qn("w:numId")) or ""
            abstract_id = _child_val(num, "w:abstractNumId") or ""
            abstract_id = self._follow_style_link(abstract_id, links, root)
            levels = dict(self._abstract_levels.get(abstract_id, {}))
            instance = _Instance(abstract_id, levels)
            for override in num.iterchildren(qn("w:lvlOverride")):
                index = _int(override.get(qn("w:ilvl")), 0)
                start = _child_val(override, "w:startOverride")
                if start is not None:
                    instance.start_overrides[index] = _int(start, 1)
                lvl = override.find(qn("w:lvl"))
                if lvl is not None:
                    levels[index] = _parse_level(lvl, levels.get(index))
            self._instances[ident] = instance

    def _follow_style_link(self, abstract_id: str, links: dict[str, str], root: Any) -> str:
        """A definition that only points at a numbering style uses that style's definition."""
        style = links.get(abstract_id)
        if not style:
            return abstract_id
        num_id, _ = self._style_numbering.get(style, (None, None))
        for num in root.iterchildren(qn("w:num")):
            if num.get(qn("w:numId")) == num_id:
                return _child_val(num, "w:abstractNumId") or abstract_id
        return abstract_id

    def label(self, paragraph: Any, style_id: str | None) -> tuple[str, bool] | None:
        """Advance the counters for ``paragraph``; its label and suffix, and whether it is a bullet.

        None when the paragraph is not numbered. A bullet gives ``("", True)``.
        """
        num_id, ilvl = _paragraph_numbering(paragraph)
        style_num, style_lvl = self._style_numbering.get(style_id or "", (None, None))
        if num_id is None:
            num_id = style_num
        if num_id is None or num_id == "0":
            return None
        instance = self._instances.get(num_id)
        if instance is None:
            return None
        if ilvl is None:
            ilvl = style_lvl
        if ilvl is None:
            ilvl = next((i for i, lv in instance.levels.items() if lv.style and lv.style == style_id), 0)
        level = instance.levels.get(ilvl)
        if level is None:
            return None
        counters = self._counters.setdefault(instance.abstract, [None] * _MAX_LEVELS)
        if num_id not in self._started:
            self._started.add(num_id)
            for index in instance.start_overrides:
                if 0 <= index < _MAX_LEVELS:
                    counters[index] = None
        start = instance.start_overrides.get(ilvl, level.start)
        current = counters[ilvl]
        counters[ilvl] = start if current is None else current + 1
        for deeper in range(ilvl + 1, _MAX_LEVELS):
            restart = instance.levels.get(deeper, _Level()).restart
            if restart is None or (restart > 0 and restart - 1 <= ilvl):
                counters[deeper] = None
        if level.fmt == "bullet":
            return "", True
        text = level.text
        for index in range(_MAX_LEVELS - 1, -1, -1):
            marker = f"%{index + 1}"
            if marker not in text:
                continue
            lv = instance.levels.get(index, _Level())
            value = counters[index]
            if value is None:
                value = instance.start_overrides.get(index, lv.start)
            drawn = _format(value, "decimal" if level.legal and index < ilvl else lv.fmt)
            text = text.replace(marker, drawn or "")
        text = text.strip()
        return (text + level.suffix if text else ""), False


def _paragraph_numbering(paragraph: Any) -> tuple[str | None, int | None]:
    ppr = paragraph.find(qn("w:pPr"))
    numpr = None if ppr is None else ppr.find(qn("w:numPr"))
    if numpr is None:
        return None, None
    num_id = _child_val(numpr, "w:numId")
    ilvl = _child_val(numpr, "w:ilvl")
    return num_id, None if ilvl is None else _int(ilvl, 0)


def style_numbering(styles_root: Any) -> dict[str, tuple[str | None, int | None]]:
    """Style id -> (numId, ilvl) given by the style or inherited through ``w:basedOn``."""
    own: dict[str, tuple[str | None, int | None]] = {}
    based: dict[str, str] = {}
    for style in styles_root.iterchildren(qn("w:style")):
        ident = style.get(qn("w:styleId"))
        if not ident:
            continue
        base = _child_val(style, "w:basedOn")
        if base:
            based[ident] = base
        num_id, ilvl = _paragraph_numbering(style)
        if num_id is not None or ilvl is not None:
            own[ident] = (num_id, ilvl)
    resolved: dict[str, tuple[str | None, int | None]] = {}
    for ident in set(own) | set(based):
        current: str | None = ident
        for _ in range(8):  # inheritance chains are short; a loop must not hang us
            if current is None or current in own:
                break
            current = based.get(current)
        if current is not None and current in own:
            resolved[ident] = own[current]
    return resolved
