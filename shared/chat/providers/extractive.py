"""The default provider: no model, no network. Quotes the retrieved sentences that best answer the question.

It reads the sources, never the prompt's prose, so text inside documents cannot instruct it. Every
sentence of the retrieved passages is a candidate, except headings (also a passage's heading repeated
as its first line), table rows and fragments (a short line with no sentence ending, such as
"Updating a Value Based on the Old Value"). Each candidate is scored by words, the share of the
question's content words it contains, each weighted by how rare it is among the candidates, and by
meaning: the cosine between its embedding and the question's (the process's own
:class:`~shared.ports.Embedder`, the model search already uses), blended with the word share, less a
little per place its passage ranked below the first, and less ``OPEN_QUESTION_PENALTY`` when it asks
or sets out to find something rather than saying it. Sentence vectors are computed once, when the
document is indexed (``chunk_sentences``, migration 0015; :func:`sentence_key` matches them), so a
turn embeds only the question; a sentence without a stored vector (a chunk indexed before that) is
embedded now, at most ``MAX_CANDIDATES`` of them, the best by words. Near-duplicates (the same
sentence in two overlapping chunks, or a paraphrase) are dropped; the best one to three are quoted
verbatim, grouped by passage in reading order, each with its source number, under a label that says
plainly this is extractive. When even the best sentence scores below ``min_score`` it says it found
no answer instead of quoting something unrelated.

``min_score`` is calibrated for the local all-MiniLM-L6-v2 model on SciFact
(``python -m benchmarks.answers --calibrate``, docs/benchmarks.md); another embedding model has
other cosines, gets a lower bar by default and may be given its own (``CHAT_EXTRACTIVE_MIN_SCORE``). Without an embedder the
score is the word share alone, with a fixed bar of half the question's weight. Token usage is
estimated (what was read and written), so quotas and metering behave as with a model.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from shared.chat.prompt import NO_ANSWER
from shared.chat.providers.base import Generation, Source, Usage
from shared.ingest.tokens import estimate_tokens
from shared.ports import Embedder

__all__ = [
    "DEFAULT_MIN_SCORE",
    "LABEL",
    "MIN_SCORES",
    "NO_ANSWER",
    "Candidate",
    "ExtractiveAnswerer",
    "min_score_for",
    "pick",
    "rank",
    "sentence_key",
    "sentence_text",
    "sentences",
]

LABEL = "Extractive answer (quoted from your documents; no language model was used):"
MAX_SENTENCES = 3
# The best sentence must score at least this, per embedding model: cosines differ between models.
# all-MiniLM-L6-v2's is calibrated on SciFact test (python -m benchmarks.answers --calibrate); another
# model gets a lower bar (quote rather than refuse) until CHAT_EXTRACTIVE_MIN_SCORE sets its own.
MIN_SCORES = {"all-MiniLM-L6-v2": 0.41}
DEFAULT_MIN_SCORE = 0.30
# Without an embedder: the share of the question's (rarity-weighted) content words a sentence must hold.
LEXICAL_MIN_SCORE = 0.5
SEMANTIC_WEIGHT = 0.7  # the rest is the word share
# A second or third quote must score at least this share of the best one, or it is padding.
FOLLOW_RATIO = 0.5
# Sentences without a stored vector embedded per answer (embedding is most of an answer's time): the
# ones holding most of the question's words, the better-ranked passage first on a tie.
MAX_CANDIDATES = 8
RANK_PENALTY = 0.02  # subtracted per place a passage is below the first, so the search's ranking counts a little
# Subtracted from a sentence that asks or sets out to find something ("We asked whether...", "To
# determine...", "... remains unclear."): it shares the question's words but states no answer.
OPEN_QUESTION_PENALTY = 0.1
_MIN_WORDS, _MAX_CHARS = 5, 400
_FRAGMENT_WORDS = 12  # a line without a sentence ending and shorter than this is a heading or a label
_DUPLICATE_JACCARD = 0.7
_DUPLICATE_COSINE = 0.93

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# A sentence ends at . ! or ? (and any closing quote or bracket) followed by space and a capital,
# digit or opening quote/bracket, so "e.g. the" and "3.5 mg" do not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”')\]]*\s+(?=[\"“(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|et al|vs|cf|Fig|Figs|No|Dr|Mr|Mrs|Ms|St|approx|ca)\.|\b[A-Z]\.)$")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+|>\s*)")
_TABLE_ROW = re.compile(r"^\s*\|")
_ENDS_SENTENCE = re.compile(r"[.!?:;][\"”')\]]*$")
_OPEN_QUESTION = re.compile(
    r"\bwhether\b|\?[\"”')\]]*$|^(?:[A-Z][A-Z ,&/]+\s+)?To (?:determine|assess|examine|investigate|evaluate|compare"
    r"|describe|explore|identify|test|estimate|study|analy[sz]e|characteri[sz]e|clarify)\b"
    r"|\b(?:is|are|remains?) (?:unknown|unclear|poorly understood|not (?:well )?(?:known|understood))\b"
    r"|\blittle is known\b",
    re.IGNORECASE,
)
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


def _blocks(text: str, headings: Sequence[str] = ()) -> Iterator[str]:
    """Paragraphs (wrapped lines joined) and list items; headings and table rows are left out, and so
    is a paragraph that is one of ``headings`` (the chunker repeats a section's heading as a plain
    first line of its body, where it has no ``#`` to tell it apart)."""
    known = {" ".join(h.split()) for h in headings}
    paragraph: list[str] = []

    def flush() -> Iterator[str]:
        text = " ".join(paragraph)
        if text and " ".join(text.split()) not in known:
            yield text
        paragraph.clear()

    for line in text.splitlines():
        if not line.strip() or _HEADING.match(line) or _TABLE_ROW.match(line) or _LIST_ITEM.match(line):
            yield from flush()
            if _LIST_ITEM.match(line) and not _HEADING.match(line):
                yield _LIST_ITEM.sub("", line)
            continue
        paragraph.append(line.strip())
    yield from flush()


def _is_fragment(sentence: str, words: int) -> bool:
    if words < _MIN_WORDS:
        return True
    if _ENDS_SENTENCE.search(sentence):
        return False
    # No sentence ending: a heading, a caption or a label unless it is long enough to be prose.
    return words < _FRAGMENT_WORDS


def sentences(text: str, headings: Sequence[str] = ()) -> list[str]:
    """The quotable sentences of a passage, in order: whole sentences of prose, verbatim (whitespace
    collapsed; over-long ones cut with an ellipsis). ``headings``: the passage's heading path, whose
    lines in the text are headings, not sentences."""
    found: list[str] = []
    for block in _blocks(text, headings):
        pieces: list[str] = []
        for piece in _SENTENCE_END.split(" ".join(block.split())):
            if pieces and _ABBREVIATION.search(pieces[-1]):
                pieces[-1] += " " + piece  # "et al. Smith" is one sentence
            else:
                pieces.append(piece)
        for sentence in pieces:
            if _is_fragment(sentence, len(_WORD.findall(sentence))):
                continue
            found.append(sentence if len(sentence) <= _MAX_CHARS else sentence[: _MAX_CHARS - 1] + "…")
    return found


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage and how well it answers the question."""

    source: Source
    position: int  # the sentence's index in its passage
    text: str
    score: float
    semantic: float
    lexical: float
    vector: tuple[float, ...] = ()


def _lexical(wanted: set[str], terms: list[set[str]]) -> list[float]:
    """Per sentence: the share of the question's content words it holds, each weighted by rarity."""
    if not wanted:
        return [0.0] * len(terms)
    count = len(terms)
    weight = {t: math.log(1 + (count + 1) / (1 + sum(t in s for s in terms))) for t in wanted}
    total = sum(weight.values())
    return [sum(weight[t] for t in wanted & s) / total for s in terms]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def sentence_text(heading_path: Sequence[str], sentence: str) -> str:
    """What is embedded for a sentence: the sentence alone. (With its heading path in front, as chunks
    are embedded, every sentence of a passage leaned towards its title: on SciFact test 0.50 of
    claims got a gold sentence quoted instead of 0.58.)"""
    return sentence


def sentence_key(heading_path: Sequence[str], sentence: str) -> str:
    """The key of a stored sentence vector (chunk_sentences.text_hash): the hash of exactly what was embedded."""
    return hashlib.sha256(sentence_text(heading_path, sentence).encode("utf-8")).hexdigest()[:32]


def rank(
    question: str,
    sources: list[Source],
    embedder: Embedder | None = None,
    known: Mapping[str, Sequence[float]] | None = None,
) -> list[Candidate]:
    """Every quotable sentence of ``sources``, best first (ties: the better-ranked source, then earlier).

    ``known``: sentence vectors stored at indexing (by :func:`sentence_key`). A sentence without one
    is embedded now, at most ``MAX_CANDIDATES`` of them (those holding most of the question's words);
    the others without a vector are not scored.
    """
    seen: set[str] = set()
    found: list[tuple[Source, int, str]] = []
    for source in sources:
        for position, sentence in enumerate(sentences(source.text, source.heading_path)):
            key = " ".join(_WORD.findall(sentence.lower()))
            if key in seen:  # overlapping chunks repeat sentences
                continue
            seen.add(key)
            found.append((source, position, sentence))
    if not found:
        return []
    order = {id(source): place for place, source in enumerate(sources)}
    wanted = content_terms(question)
    lexical = _lexical(wanted, [content_terms(s) for _, _, s in found])
    if embedder is None:
        scored = [Candidate(src, pos, s, lex, 0.0, lex) for (src, pos, s), lex in zip(found, lexical, strict=True)]
    else:
        stored = known or {}
        keys = [sentence_key(src.heading_path, s) for src, _, s in found]
        missing = [i for i, key in enumerate(keys) if key not in stored]
        if len(missing) > MAX_CANDIDATES:  # keep the embedding cost bounded: most question words first
            by_words = sorted(missing, key=lambda i: (-lexical[i], order[id(found[i][0])], i))
            dropped = set(by_words[MAX_CANDIDATES:])
            keep = [i for i in range(len(found)) if i not in dropped]
            found, lexical, keys = [found[i] for i in keep], [lexical[i] for i in keep], [keys[i] for i in keep]
            missing = [i for i, key in enumerate(keys) if key not in stored]
        fresh = embedder.embed([question] + [sentence_text(found[i][0].heading_path, found[i][2]) for i in missing])
        query = fresh[0]
        vectors = {keys[i]: vector for i, vector in zip(missing, fresh[1:], strict=True)}
        scored = []
        for (src, pos, s), lex, key in zip(found, lexical, keys, strict=True):
            vector = vectors[key] if key in vectors else stored[key]
            semantic = _dot(query, vector)
            score = SEMANTIC_WEIGHT * semantic + (1 - SEMANTIC_WEIGHT) * lex - RANK_PENALTY * order[id(src)]
            if _OPEN_QUESTION.search(s):
                score -= OPEN_QUESTION_PENALTY
            scored.append(Candidate(src, pos, s, score, semantic, lex, tuple(vector)))
    scored.sort(key=lambda c: (-c.score, order[id(c.source)], c.position))
    return scored


def _duplicate(a: Candidate, b: Candidate) -> bool:
    if a.vector and b.vector and _dot(a.vector, b.vector) >= _DUPLICATE_COSINE:
        return True
    wa, wb = set(_WORD.findall(a.text.lower())), set(_WORD.findall(b.text.lower()))
    return len(wa & wb) / max(1, len(wa | wb)) >= _DUPLICATE_JACCARD


def min_score_for(embedder: Embedder) -> float:
    """The refusal bar calibrated for ``embedder``'s model, else the bar for uncalibrated models."""
    return MIN_SCORES.get(embedder.model_id, DEFAULT_MIN_SCORE)


def pick(
    question: str,
    sources: list[Source],
    embedder: Embedder | None = None,
    min_score: float | None = None,
    known: Mapping[str, Sequence[float]] | None = None,
) -> list[Candidate]:
    """The sentences to quote, in reading order; [] when even the best one does not answer well enough.

    Reading order: passages in the order of their best quoted sentence, sentences of one passage in
    the order they are written.
    """
    ranked = rank(question, sources, embedder, known)
    if embedder is None:
        bar = LEXICAL_MIN_SCORE
    else:
        bar = min_score_for(embedder) if min_score is None else min_score
    if not ranked or ranked[0].score < bar:
        return []
    chosen: list[Candidate] = []
    for candidate in ranked:
        if len(chosen) == MAX_SENTENCES or candidate.score < max(bar, FOLLOW_RATIO * ranked[0].score):
            break
        if not any(_duplicate(candidate, kept) for kept in chosen):
            chosen.append(candidate)
    first: dict[int, int] = {}  # source -> rank of its best quoted sentence
    for index, candidate in enumerate(chosen):
        first.setdefault(id(candidate.source), index)
    return sorted(chosen, key=lambda c: (first[id(c.source)], c.position))


class ExtractiveAnswerer:
    """Quotes; never writes. ``embedder`` scores sentences by meaning (see the module docstring)."""

    name = "extractive"
    model = "extractive-v3"
    extractive = True

    def __init__(
        self,
        embedder: Embedder | None = None,
        min_score: float | None = None,
        known: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.known = known

    def using(
        self, embedder: Embedder, min_score: float | None = None, known: Mapping[str, Sequence[float]] | None = None
    ) -> ExtractiveAnswerer:
        """This answerer scoring with ``embedder`` (the process's, handed down by the chat turn) and the
        sentence vectors stored for this turn's passages (``known``, by :func:`sentence_key`);
        ``min_score`` None: the bar calibrated for that embedder's model."""
        return ExtractiveAnswerer(embedder, min_score_for(embedder) if min_score is None else min_score, known)

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        chosen = pick(generation.question, generation.sources, self.embedder, self.min_score, self.known)
        pieces = [NO_ANSWER] if not chosen else [LABEL + "\n"] + [f'\n- "{c.text}" [{c.source.n}]' for c in chosen]
        yield from pieces
        read = generation.question + "".join(source.text for source in generation.sources)
        yield Usage(estimate_tokens(read), estimate_tokens("".join(pieces)), estimated=True)
