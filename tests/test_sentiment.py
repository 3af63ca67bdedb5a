"""Sentiment-history reward: tone that fits the conversation scores higher."""

import pytest

from egail.sentiment import SentimentHistory


@pytest.fixture(scope="module")
def scorer():
    return SentimentHistory()


def test_sympathy_beats_cheer_after_bad_news(scorer):
    prompt = "My grandmother died last night and I feel terrible."
    kind = scorer.reward([], prompt, "I'm so sorry for your loss. That must hurt a lot.")
    cheerful = scorer.reward([], prompt, "Awesome! That's great, have a wonderful fun day!")
    assert kind > cheerful


def test_joy_is_shared_after_good_news(scorer):
    prompt = "I got the job! I'm so happy and excited!"
    shared = scorer.reward([], prompt, "Congratulations, that's wonderful news! You earned it.")
    gloomy = scorer.reward([], prompt, "That is terrible and sad, I hate it.")
    assert shared > gloomy


def test_history_counts_with_decay(scorer):
    sad_history = ["I have been miserable and depressed all week.", "I'm sorry, that sounds awful."]
    assert scorer.state_mood(sad_history, "ok.") < 0 < scorer.state_mood([], "This is great, I love it!")
    # the prompt counts most: two user turns weighted 1 and decay
    mood = scorer.state_mood(sad_history, "I love it!")
    expected = (scorer.compound("I love it!") + 0.5 * scorer.compound(sad_history[0])) / 1.5
    assert mood == pytest.approx(expected)


def test_negative_moods_are_acknowledged_at_half_strength(scorer):
    assert scorer.target(-0.8) == pytest.approx(-0.4)
    assert scorer.target(0.6) == pytest.approx(0.6)


def test_rewards_are_in_unit_interval(scorer):
    values = scorer([[], ["a", "b"]], ["I hate this", "fine"], ["I love this so much!", "ok"])
    assert all(0.0 <= v <= 1.0 for v in values)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError):
        SentimentHistory(decay=1.5)
