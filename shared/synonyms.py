"""Query expansion for the lexical leg: abbreviations and synonyms, legal terms first.

Users write "NDA" where the contract says "non-disclosure agreement", and the reverse. Each
entry maps a phrase (matched case-insensitively on word boundaries) to the phrases that mean the
same; matches add those phrases to the lexical query (OR-ed, like every query term). The vector
leg sees the user's words unchanged: the embedding model already knows most of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

LEGAL: Mapping[str, tuple[str, ...]] = {
    "nda": ("non-disclosure agreement", "confidentiality agreement"),
    "non-disclosure agreement": ("nda", "confidentiality agreement"),
    "confidentiality agreement": ("nda", "non-disclosure agreement"),
    "msa": ("master services agreement",),
    "master services agreement": ("msa",),
    "sow": ("statement of work",),
    "statement of work": ("sow",),
    "sla": ("service level agreement",),
    "service level agreement": ("sla",),
    "dpa": ("data processing agreement", "data processing addendum"),
    "data processing agreement": ("dpa",),
    "gdpr": ("general data protection regulation",),
    "general data protection regulation": ("gdpr",),
    "ip": ("intellectual property",),
    "intellectual property": ("ip",),
    "loi": ("letter of intent",),
    "letter of intent": ("loi",),
    "mou": ("memorandum of understanding",),
    "memorandum of understanding": ("mou",),
    "tos": ("terms of service",),
    "terms of service": ("tos", "terms and conditions"),
    "t&c": ("terms and conditions",),
    "indemnify": ("indemnification", "hold harmless"),
    "indemnification": ("indemnify", "hold harmless"),
    "hold harmless": ("indemnification",),
    "terminate": ("termination", "cancel"),
    "termination": ("terminate", "cancellation"),
    "force majeure": ("act of god", "unforeseeable circumstances"),
    "liability cap": ("limitation of liability",),
    "limitation of liability": ("liability cap",),
    "governing law": ("applicable law", "jurisdiction"),
    "non-compete": ("non-competition", "restrictive covenant"),
    "non-solicit": ("non-solicitation",),
}


@lru_cache(maxsize=8)
def _pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    # Longest phrases first, so "non-disclosure agreement" wins over a shorter overlapping key.
    alternatives = sorted(keys, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in alternatives) + r")(?![\w-])", re.IGNORECASE)


def expand(query: str, table: Mapping[str, Iterable[str]] = LEGAL) -> str:
    """``query`` plus the equivalents of every phrase in it that ``table`` knows."""
    if not table:
        return query
    found: list[str] = []
    for match in _pattern(tuple(table)).finditer(query):
        for phrase in table[match.group(1).lower()]:
            if phrase not in found and phrase.lower() not in query.lower():
                found.append(phrase)
    return query if not found else f"{query} {' '.join(found)}"
