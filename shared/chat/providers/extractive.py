"""The default provider: no model, no network. Quotes the retrieved sentences that best match the question.

It reads the sources, never the prompt's prose, so text inside documents cannot instruct it. A
sentence qualifies when it contains at least half of the question's content words (crudely
stemmed, stop words dropped); the best few are quoted in document order, each with its source
number, under a label that says plainly this is extractive. When nothing qualifies it says it
found no answer instead of guessing. Token usage is estimated (what was read and written), so
quotas and metering behave as with a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.chat.prompt import NO_ANSWER
from shared.chat.providers.base import Generation, Source, Usage
from shared.ingest.tokens import estimate_tokens

__all__ = ["LABEL", "NO_ANSWER", "ExtractiveAnswerer", "pick", "sentences"]

LABEL = "Extractive answer (quoted from your documents; no language model was used):"
MAX_SENTENCES = 3
_MIN_WORDS, _MAX_CHARS = 4, 400

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”')\]]*\s+")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*•]\s+|\d+[.)]\s+|>\s*)")
_STOP = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves many much get got tell please us let say
""".split()
)


def content_terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and (len(w) > 1 or w.isdigit())}


def _stem(word: str) -> str:
    # Just enough to match "invoices" with "invoice" and "paying" with "pay"; not a real stemmer.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def sentences(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        line = _MARKUP.sub("", line).strip()
        for sentence in _SENTENCE_END.split(line):
            sentence = " ".join(sentence.split())
            if len(_WORD.findall(sentence)) >= _MIN_WORDS:
                found.append(sentence if len(sentence) <= _MAX_CHARS else sentence[: _MAX_CHARS - 1] + "…")
    return found


def pick(question: str, sources: list[Source]) -> list[tuple[Source, int, str]]:
    """The best (source, position, sentence) triples, in document order; [] when nothing answers."""
    wanted = content_terms(question)
    if not wanted:
        return []
    needed = (len(wanted) + 1) // 2
    scored = []
    for rank, source in enumerate(sources):
        for position, sentence in enumerate(sentences(source.text)):
            matched = len(wanted & content_terms(sentence))
            if matched >= needed:
                # More of the question first; then the better-ranked source, then the shorter sentence.
                scored.append((-matched, rank, len(sentence), position, source, sentence))
    scored.sort(key=lambda s: s[:4])
    best = scored[:MAX_SENTENCES]
    best.sort(key=lambda s: (s[1], s[3]))
    return [(s[4], s[3], s[5]) for s in best]


class ExtractiveAnswerer:
    name = "extractive"
    model = "extractive-v1"
    extractive = True

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        chosen = pick(generation.question, generation.sources)
        pieces = [NO_ANSWER] if not chosen else [LABEL + "\n"] + [f'\n- "{s}" [{src.n}]' for src, _, s in chosen]
        yield from pieces
        read = generation.question + "".join(source.text for source in generation.sources)
        yield Usage(estimate_tokens(read), estimate_tokens("".join(pieces)), estimated=True)
