"""Sentiment-history reward: a reply that acknowledges the mood beats empty, echoed, flat or off-tone replies."""

import pytest

from egail.sentiment import SentimentHistory

SAD = "I failed my driving test today and I feel awful."
HAPPY = "I passed my exam and I am so happy!"
NEUTRAL = "I went to the store today."


@pytest.fixture(scope="module")
def scorer():
    return SentimentHistory()


@pytest.mark.parametrize(
    "reply",
    ["", "   ", SAD, "i failed my driving test today", "What did you do next?", "Okay.", "That's awesome, have fun!"],
)
def test_nothing_unacknowledging_beats_a_supportive_reply_to_bad_news(scorer, reply):
    supportive = scorer.reward([], SAD, "I'm so sorry. I hope you find some peace, you will get there.")
    assert supportive == pytest.approx(1.0)
    assert scorer.reward([], SAD, reply) == 0.0


def test_the_documented_order_on_a_sad_state(scorer):
    rewards = [
        scorer.reward([], SAD, r) for r in ("", "Okay.", "Sorry to hear that.", "I'm so sorry. I hope it gets better.")
    ]
    assert rewards == sorted(rewards) and rewards[0] == rewards[1] == 0.0 < rewards[2] == 0.5 < rewards[3] == 1.0


def test_joy_is_shared_after_good_news_and_sympathy_is_not(scorer):
    assert scorer.reward([], HAPPY, "Congratulations, that is wonderful news!") == 1.0
    assert scorer.reward([], HAPPY, "I'm so sorry. I hope you find some peace.") == 0.0
    assert scorer.reward([], HAPPY, "That is terrible and sad.") == 0.0
    assert scorer.reward([], HAPPY, "") == scorer.reward([], HAPPY, HAPPY) == 0.0


def test_a_neutral_state_prefers_no_tone(scorer):
    replies = ["", "What did you buy?", "Congratulations!", "I'm so sorry."]
    assert [scorer.reward([], NEUTRAL, r) for r in replies] == [0.0] * 4


def test_an_echo_of_an_earlier_user_turn_scores_nothing(scorer):
    history = ["My cat is very sick and I am scared.", "Oh no, what did the vet say?"]
    assert scorer.reward(history, "Not much.", "my cat is very sick and i am scared") == 0.0
    assert scorer.reward(history, "Not much.", "I'm sorry, that must be scary.") > 0.0


def test_history_counts_with_decay(scorer):
    sad_history = ["I have been miserable and depressed all week.", "I'm sorry, that sounds awful."]
    assert scorer.state_mood(sad_history, "ok.") < 0 < scorer.state_mood([], "This is great, I love it!")
    mood = scorer.state_mood(sad_history, "I love it!")  # two user turns, weighted 1 and decay
    expected = (scorer.compound("I love it!") + 0.5 * scorer.compound(sad_history[0])) / 1.5
    assert mood == pytest.approx(expected)
    # a sad history makes a neutral prompt a state to acknowledge
    assert scorer.reward(sad_history, "ok.", "I'm so sorry, I hope next week is kinder.") > 0.0


def test_a_milder_mood_pays_less(scorer):
    mild = "My dog passed away this morning and the house feels empty."  # VADER: -0.2
    assert 0.0 < scorer.reward([], mild, "I'm so sorry. I hope you are ok.") < 1.0


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError):
        SentimentHistory(decay=1.5)
    with pytest.raises(ValueError):
        SentimentHistory(cues_for_full=0)
