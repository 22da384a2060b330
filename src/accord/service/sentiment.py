"""Offline sentiment scoring for inbound customer messages (issue 6).

Why it is built this way:

* **Offline.** The model is VADER (``vaderSentiment`` on PyPI, MIT): a lexicon and rules. Its
  lexicons are text files inside the installed package and are read once per process; nothing
  is downloaded and no socket is opened (the demo in that package that calls a translation web
  service only runs under ``__main__`` and is never imported here).
* **English only, honestly.** VADER's lexicon is English. No maintained package was found that
  gives a comparable *offline* model for German, French, Spanish or Italian (``vader-multi``
  translates through a web service; the German transformer packages download weights at run
  time). Scoring other languages with the English lexicon would mostly return "neutral" and
  occasionally something wrong, so for any other language -- and when the language is unknown
  (``None``) -- the result is ``supported=False`` with no score. Callers pass the customer's
  preferred language or the ticket's locale (e.g. the deployment default); we do not guess it
  from the text, because language detection on short messages is unreliable.
* **Only the customer's new words count.** Quoted reply history (``> ...`` lines, an
  ``On ... wrote:`` attribution, Outlook's ``-----Original Message-----`` block) and the
  signature (from the ``-- `` delimiter on) are removed before scoring; otherwise a friendly
  reply to an angry thread would be scored as angry.
* **Bounded work.** At most :data:`MAX_CHARS` characters of the new text are scored (the first
  5,000); ``truncated`` says when that happened. Scoring is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

MODEL = "vader"
MODEL_VERSION = version("vaderSentiment")
MAX_CHARS = 5_000
SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"en"})
# VADER's documented thresholds on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

Label = Literal["negative", "neutral", "positive"]

_QUOTE_LINE = re.compile(r"^\s*>")
_ATTRIBUTION_START = re.compile(r"^\s*On\s.+", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"wrote:\s*$", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s*$")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """One message's score; ``compound``/``label`` are ``None`` when not supported."""

    compound: float | None
    label: Label | None
    language: str | None
    supported: bool
    model: str = MODEL
    model_version: str = MODEL_VERSION
    truncated: bool = False


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    """Load the packaged lexicons once per process (the analyzer is read-only afterwards)."""
    return SentimentIntensityAnalyzer()


def normalise_language(language: str | None) -> str | None:
    """``"en-GB"``, ``"EN_us"``, ``" en "`` -> ``"en"``; blank -> ``None``."""
    if language is None:
        return None
    primary = re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()
    return primary or None


def _is_attribution(lines: list[str], i: int) -> int:
    """Return how many lines an ``On ... wrote:`` attribution at ``i`` spans (0 if none).

    Mail clients wrap long attributions, so the ``wrote:`` may be on the next line.
    """
    if not _ATTRIBUTION_START.match(lines[i]):
        return 0
    if _ATTRIBUTION_END.search(lines[i]):
        return 1
    if i + 1 < len(lines) and _ATTRIBUTION_END.search(lines[i + 1]):
        return 2
    return 0


def strip_quoted(text: str) -> str:
    """Keep only the sender's new words: drop quoted history and the signature.

    ``>``-quoted lines are dropped wherever they are, so interleaved and bottom-posted replies
    keep their new lines. An attribution followed by unprefixed text (how many clients quote
    when top-posting) and an Outlook original-message marker end the new text.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _SIGNATURE.match(line) or _ORIGINAL_MESSAGE.match(line):
            break
        span = _is_attribution(lines, i)
        if span:
            rest = [candidate for candidate in lines[i + span :] if candidate.strip()]
            if rest and not _QUOTE_LINE.match(rest[0]):
                break  # unprefixed quoted history follows
            i += span
            continue
        if not _QUOTE_LINE.match(line):
            kept.append(line)
        i += 1
    return "\n".join(kept).strip()


def label_for(compound: float) -> Label:
    """VADER's standard mapping of the compound score to a label."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def score(text: str, language: str | None = None) -> Sentiment:
    """Score the new words of one inbound message in the customer's language."""
    lang = normalise_language(language)
    new_text = strip_quoted(text or "")
    if not new_text:
        # Nothing new to score is neutral in any language.
        return Sentiment(compound=0.0, label="neutral", language=lang, supported=True)
    if lang not in SUPPORTED_LANGUAGES:
        return Sentiment(compound=None, label=None, language=lang, supported=False)
    truncated = len(new_text) > MAX_CHARS
    compound = float(_analyzer().polarity_scores(new_text[:MAX_CHARS])["compound"])
    compound = max(-1.0, min(1.0, compound))
    return Sentiment(
        compound=compound,
        label=label_for(compound),
        language=lang,
        supported=True,
        truncated=truncated,
    )


def is_negative(sentiment: Sentiment, threshold: float = NEGATIVE_THRESHOLD) -> bool:
    """True when the message was scored and is at or below ``threshold``; unscored is not."""
    return sentiment.compound is not None and sentiment.compound <= threshold
