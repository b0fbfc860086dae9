"""From a language model's completion to a text worth voting on, or a reason to redraw it.

Small instruction-tuned models answer with preambles ("Sure, here is the rewritten text:"),
labels ("Headline:"), markdown, quotes, a sentence cut by the token limit, or not at all: the
blanks of a fill-in-the-blanks prompt echoed back, the instruction repeated, one word over and
over. ``clean_completion`` removes the wrapping; ``text_problem`` names what makes the rest
unusable, so that the modality redraws it instead of letting the private data vote on it or
releasing it. Both read only the completion and the public prompt: no private text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from string import Formatter

MIN_WORDS = 6
"""Default fewest words of a usable text (an AG News headline alone has about eight)."""
ECHO_NGRAM = 5
"""Words in a row shared with a prompt's own wording that count as echoing the prompt."""

_PREAMBLE = re.compile(
    r"^\s*(sure|certainly|okay|of course|absolutely|here(?:'s| is| are)|below is|this is the (?:rewritten|completed))"
    r"\b[^\n]*?(?::|!|\.)\s*(?:\n|$)",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(?:#+\s*)?\**\s*(?:headline|title|text|article|summary|news|story|body|category|topic|"
    r"rewritten text|completed text|answer|output)\s*\**\s*:\s*\**",
    re.IGNORECASE,
)
_COMMENTARY = re.compile(
    r"\s*[(\[]?\b(?:justification|explanation|reasoning|rationale|note|notes|original text|original)\s*:.*$",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"\*\*|__(?=\w)|(?<=\w)__|^#+\s*", re.MULTILINE)
_BLANK = re.compile(r"(?:^|[\s(\[\"'])_+(?=$|[\s.,;:!?)\]\"'])|_{2,}")
_SENTENCE_END = re.compile(r"[.!?](?:[\"')\]]*)(?=\s|$)")
_WORD = re.compile(r"[\w']+")
_QUOTES = "\"'“”‘’`"


def clean_completion(completion: str, *, max_parts: int = 2, min_words: int = MIN_WORDS) -> str:
    """The text in a completion, without its wrapping.

    Drops a leading preamble line and field labels ("Headline:", "Text:"), markdown emphasis and
    headings, and quotes around each part; keeps the first ``max_parts`` non-empty lines (a
    headline and its paragraph), joined by a space; drops the model's commentary on its own
    answer ("Justification: ...", "Note: ..."); and cuts a last sentence left unfinished by the
    token limit, when what comes before it is a text of ``min_words`` words or more.
    """
    text = _PREAMBLE.sub("", completion.strip(), count=1)
    parts = []
    for line in text.splitlines():
        part = _MARKDOWN.sub("", _LABEL.sub("", line)).strip().strip(_QUOTES).strip()
        if part:
            parts.append(part)
        if len(parts) == max_parts:
            break
    return _without_unfinished_sentence(_COMMENTARY.sub("", " ".join(parts)), min_words)


def _without_unfinished_sentence(text: str, min_words: int) -> str:
    """``text`` up to its last finished sentence, if that much is still a usable text."""
    ends = list(_SENTENCE_END.finditer(text))
    if not ends or ends[-1].end() == len(text):
        return text
    finished = text[: ends[-1].end()]
    return finished if len(finished.split()) >= min_words else text


def prompt_ngrams(templates: Iterable[str], size: int = ECHO_NGRAM) -> frozenset[tuple[str, ...]]:
    """The ``size``-word sequences of the templates' own wording (their fields left out), lower case."""
    ngrams: set[tuple[str, ...]] = set()
    for template in templates:
        for literal, *_ in Formatter().parse(template):
            words = _words(literal)
            ngrams.update(tuple(words[start : start + size]) for start in range(len(words) - size + 1))
    return frozenset(ngrams)


def text_problem(
    text: str,
    *,
    echo_ngrams: frozenset[tuple[str, ...]] = frozenset(),
    source: str | None = None,
    min_words: int = MIN_WORDS,
) -> str | None:
    """What makes ``text`` unusable as a candidate, or ``None`` when it is a text.

    Args:
        text: A cleaned completion.
        echo_ngrams: Word sequences of the prompts' own wording (``prompt_ngrams``); a text that
            contains one repeats its instructions.
        source: For a variation, the text it varies; returning it unchanged is no variation.
        min_words: Fewer words than this is too short.

    Returns:
        ``"too short"``, ``"blanks left"``, ``"prompt echoed"``, ``"repetitive"``, ``"unchanged"`` or ``None``.
    """
    words = _words(text)
    if len(words) < min_words:
        return "too short"
    if _BLANK.search(text):
        return "blanks left"
    if echo_ngrams and any(
        tuple(words[start : start + ECHO_NGRAM]) in echo_ngrams for start in range(len(words) - ECHO_NGRAM + 1)
    ):
        return "prompt echoed"
    if _repetitive(words):
        return "repetitive"
    if source is not None and words == _words(source):
        return "unchanged"
    return None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _repetitive(words: list[str]) -> bool:
    """A word three times in a row, or a long text made of few distinct words."""
    if any(words[index] == words[index + 1] == words[index + 2] for index in range(len(words) - 2)):
        return True
    return len(words) >= 12 and len(set(words)) < 0.4 * len(words)
