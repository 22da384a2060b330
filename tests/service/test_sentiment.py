"""Sentiment scoring of inbound messages: labels, quote stripping, languages, offline loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from accord.service import sentiment
from accord.service.sentiment import (
    MAX_CHARS,
    Sentiment,
    is_negative,
    normalise_language,
    score,
    strip_quoted,
)

COMPLAINT = "This is the third time my order arrived broken. I am furious and want a refund now."
THANKS = "Thank you so much, the replacement arrived and it works great! Really happy."
QUESTION = "Can you tell me when my order will ship to the Leeds office?"
ANGRY = "This is terrible, awful, useless garbage and I hate it. Worst service ever!"


def test_clear_complaint_is_negative() -> None:
    result = score(COMPLAINT, "en")
    assert result.supported is True
    assert result.compound is not None and result.compound <= -0.05
    assert result.label == "negative"
    assert is_negative(result)


def test_clear_thanks_is_positive() -> None:
    result = score(THANKS, "en")
    assert result.compound is not None and result.compound >= 0.05
    assert result.label == "positive"
    assert not is_negative(result)


def test_neutral_question_is_neutral() -> None:
    result = score(QUESTION, "en")
    assert result.compound is not None and -0.05 < result.compound < 0.05
    assert result.label == "neutral"
    assert not is_negative(result)


def test_negation_scores_lower() -> None:
    good, not_good = (
        score("The delivery was good.", "en"),
        score("The delivery was not good.", "en"),
    )
    assert good.compound is not None and not_good.compound is not None
    assert not_good.compound < good.compound
    assert good.label == "positive"
    assert not_good.label == "negative"


def test_result_carries_model_and_language() -> None:
    result = score(THANKS, "en-GB")
    assert result.language == "en"
    assert result.model == "vader"
    assert result.model_version == "3.3.2"
    assert result.compound is not None and -1.0 <= result.compound <= 1.0


def test_quoted_history_is_ignored() -> None:
    message = (
        "Thanks, that fixed it. Have a nice day!\n"
        "\n"
        "On Mon, 23 Nov 2026 at 10:00, Ann Customer <ann@example.com> wrote:\n"
        f"> {ANGRY}\n"
        "> I am furious and want a refund now.\n"
    )
    assert score(ANGRY, "en").label == "negative"  # the quoted words alone would be negative
    result = score(message, "en")
    assert result.label == "positive"
    assert not is_negative(result)


def test_wrapped_attribution_and_unprefixed_history_are_ignored() -> None:
    message = (
        "Great, thank you!\n"
        "On Mon, 23 Nov 2026 at 10:00, Ann Customer\n"
        "<ann@example.com> wrote:\n"
        f"{ANGRY}\n"
    )
    assert strip_quoted(message) == "Great, thank you!"
    assert score(message, "en").label == "positive"


def test_outlook_original_message_is_ignored() -> None:
    message = f"All sorted now, thanks.\n\n-----Original Message-----\nFrom: Ann\n{ANGRY}\n"
    assert strip_quoted(message) == "All sorted now, thanks."


def test_interleaved_reply_keeps_new_lines_only() -> None:
    message = f"On Mon, Ann wrote:\n> {ANGRY}\nThat was me last week, sorry. All good now!\n"
    assert strip_quoted(message) == "That was me last week, sorry. All good now!"


def test_signature_is_ignored() -> None:
    message = "When will my parcel ship?\n-- \nAnn\nHappy, great, wonderful, love it, Ltd."
    assert strip_quoted(message) == "When will my parcel ship?"
    assert score(message, "en").label == "neutral"
    # Without the delimiter the signature words would move the score.
    assert score(message.replace("-- \n", ""), "en").label == "positive"


def test_only_quoted_text_is_neutral() -> None:
    result = score(f"> {ANGRY}\n> {COMPLAINT}", "en")
    assert (result.compound, result.label, result.supported) == (0.0, "neutral", True)


@pytest.mark.parametrize("text", ["", "   ", "\n\t\r\n"])
def test_empty_is_neutral_and_supported(text: str) -> None:
    for language in ("en", "de", None):
        result = score(text, language)
        assert (result.compound, result.label, result.supported) == (0.0, "neutral", True)


@pytest.mark.parametrize("language", ["de", "fr-FR", "es", "it", None, ""])
def test_other_or_unknown_language_is_not_scored(language: str | None) -> None:
    result = score("Das ist schrecklich, ich bin wütend!", language)
    assert result.supported is False
    assert result.compound is None and result.label is None
    assert not is_negative(result)


def test_language_normalisation() -> None:
    assert normalise_language("EN_us") == "en"
    assert normalise_language(" en-GB ") == "en"
    assert normalise_language("") is None
    assert normalise_language(None) is None
    assert score(COMPLAINT, "EN-us").supported is True


def test_long_input_is_capped() -> None:
    long_text = THANKS + " " + ("We will wait for the parcel. " * 400) + ANGRY * 50
    assert len(long_text) > MAX_CHARS * 2
    result = score(long_text, "en")
    assert result.truncated is True
    # The angry tail lies beyond the cap, so it does not count.
    assert result.label == "positive"
    assert score(THANKS, "en").truncated is False


def test_threshold_is_configurable() -> None:
    mild = Sentiment(compound=-0.2, label="negative", language="en", supported=True)
    assert is_negative(mild)
    assert not is_negative(mild, threshold=-0.5)


def test_deterministic() -> None:
    first = [score(t, "en") for t in (COMPLAINT, THANKS, QUESTION)]
    sentiment._analyzer.cache_clear()  # a freshly loaded model scores the same
    assert [score(t, "en") for t in (COMPLAINT, THANKS, QUESTION)] == first


def test_model_loads_from_package_files_without_network() -> None:
    """Load and score in a fresh process that records every file open and socket use."""
    script = textwrap.dedent(
        """
        import json, os, sys
        import vaderSentiment
        from accord.service import sentiment
        events = []
        def hook(event, args):
            if event == "open" and isinstance(args[0], str):
                events.append(("open", os.path.realpath(args[0])))
            elif event.startswith(("socket.", "urllib.", "http.")):
                events.append((event, repr(args)))
        sys.addaudithook(hook)
        result = sentiment.score("I am furious, this is broken.", "en")
        print(json.dumps({"events": events, "label": result.label,
                          "pkg": os.path.realpath(os.path.dirname(vaderSentiment.__file__))}))
        """
    )
    env = {**os.environ, "no_proxy": "*"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["label"] == "negative"
    kinds = {kind for kind, _ in data["events"]}
    assert kinds == {"open"}  # no socket/urllib/http activity at all
    opened = {path for _, path in data["events"]}
    assert {os.path.basename(p) for p in opened} >= {"vader_lexicon.txt", "emoji_utf8_lexicon.txt"}
    assert all(p.startswith(data["pkg"] + os.sep) for p in opened), opened
