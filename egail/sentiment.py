"""Sentiment-history: a reward for a reply that acknowledges how the conversation has felt so far.

The paper feeds "sentiment analysis of the conversation history" into the reward. egail makes that concrete, and
makes it a term a policy cannot satisfy by saying nothing:

1. The *mood* of the state is the VADER compound score of the user's utterances (the prompt and the user's earlier
   turns), each earlier turn discounted by ``decay``: the latest message counts most, but a conversation that has
   been sad for a while still reads as sad after one neutral line.
2. A reply *acknowledges* a mood with cues that fit it. For a sad mood: words of sympathy or support ("sorry",
   "that sounds hard", "I'm here for you", "I hope ...") or naming the bad feeling (one strongly negative VADER
   word, e.g. "awful", counts at most once). For a happy mood: words of shared joy ("congratulations", "I'm happy
   for you", "that's great") or strongly positive VADER words.
3. The reward is ``strength(mood) * min(1, cues / cues_for_full)`` in [0, 1], where cues that fit the opposite
   mood count against (see `SentimentHistory.cues`), and ``strength`` rises from 0 on a
   neutral state to 1 at ``|mood| >= full_mood``. An empty reply, or one that echoes a user turn, scores 0.

Why this form. The earlier "match the state's sentiment" reward paid most for *no* sentiment: an empty reply scored
1.0 on a neutral state and any flat reply >= 0.75 on a sad one, while a hopeful, supportive reply to grief (VADER
rates hope as positive) scored 0.55. Here, on a sad state: empty = echo = flat ("What did you do next?", "Okay.")
= 0 < "Sorry to hear that." (one cue, 0.5) < "I'm so sorry. I hope you find some peace." (1.0); a cheerful
"That's awesome, have fun!" has no cue that fits grief and scores 0. On a neutral state every reply scores 0: with
no mood to acknowledge, the term prefers no tone, and the discriminator alone judges the reply.

It is a shaping term added to D's reward with ``sentiment_history_weight`` (0 turns it off), not a replacement.
"""

from __future__ import annotations

import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

#: Phrases of sympathy or support: cues that fit a sad mood.
SYMPATHY = (
    r"\bsorry\b", r"\bthat (sounds|must be|must have been|is|'s) (so |really |very )?(hard|tough|rough|awful|"
    r"terrible|sad|scary|difficult|horrible|painful|frustrating|upsetting)", r"\bsounds (so |really )?(hard|tough|"
    r"rough|awful|terrible|difficult|stressful|painful|frustrating|scary)", r"\bmust (be|have been|feel)\b",
    r"\bi (can )?(only )?imagine\b", r"\bi understand\b", r"\bi know how\b", r"\bhere for you\b", r"\bnot alone\b",
    r"\bhope\b", r"\bhang in there\b", r"\btake care\b", r"\bfeel for you\b", r"\bcondolences?\b", r"\bhugs?\b",
    r"\bhow are you (feeling|holding up|doing)\b", r"\bit'?s (ok|okay|normal) to (feel|be)\b", r"\bpoor (you|thing)\b",
)  # fmt: skip
#: Phrases of shared joy: cues that fit a happy mood.
JOY = (
    r"\bcongrat", r"\bhappy for you\b", r"\bglad\b", r"\bproud of you\b", r"\bgood for you\b", r"\bwell done\b",
    r"\bthat('s| is| sounds) (so |really )?(great|wonderful|amazing|awesome|fantastic|exciting|fun|lovely|cool|"
    r"nice)\b", r"\byou deserve\b", r"\bhow exciting\b", r"\bgood luck\b",
)  # fmt: skip
#: |VADER valence| from which a single word counts as naming a feeling.
STRONG_VALENCE = 1.5

_WORD = re.compile(r"[a-z']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


class SentimentHistory:
    """Scores replies by how they acknowledge the discounted mood of the user's turns (see the module docstring)."""

    def __init__(self, decay: float = 0.5, full_mood: float = 0.5, cues_for_full: int = 2):
        if not 0.0 <= decay <= 1.0 or not 0.0 < full_mood <= 1.0 or cues_for_full < 1:
            raise ValueError("decay must be in [0, 1], full_mood in (0, 1] and cues_for_full >= 1")
        self.decay = decay
        self.full_mood = full_mood
        self.cues_for_full = cues_for_full
        self._vader = SentimentIntensityAnalyzer()
        self._sympathy = re.compile("|".join(SYMPATHY))
        self._joy = re.compile("|".join(JOY))

    def compound(self, text: str) -> float:
        """VADER compound score in [-1, 1]."""
        return self._vader.polarity_scores(text)["compound"] if text.strip() else 0.0

    def state_mood(self, history: list[str], prompt: str) -> float:
        """Discounted mean compound of the user's utterances: the prompt, then every second utterance back."""
        user_turns = [prompt, *history[-2::-2]]  # newest first; history ends with an assistant turn
        weights = [self.decay**age for age in range(len(user_turns))]
        return sum(w * self.compound(u) for w, u in zip(weights, user_turns, strict=True)) / sum(weights)

    def cues(self, response: str, mood: float) -> int:
        """Cues in ``response`` that fit ``mood``, less those that fit the opposite mood (0 at least).

        A sad mood counts sympathy phrases and one strong negative word (piling up gloom is not sympathy) and
        subtracts joy phrases ("that's great!" to grief); a happy mood counts joy phrases and strong positive words
        and subtracts sympathy phrases and strong negative words ("I'm sorry" to good news).
        """
        words = _words(response)
        text = " ".join(words)
        valences = [self._vader.lexicon.get(w, 0.0) for w in words]
        positive, negative = sum(v >= STRONG_VALENCE for v in valences), sum(v <= -STRONG_VALENCE for v in valences)
        sympathy, joy = len(self._sympathy.findall(text)), len(self._joy.findall(text))
        if mood < 0:
            return max(0, sympathy + min(1, negative) - joy)
        return max(0, joy + positive - sympathy - negative)

    @staticmethod
    def echoes(response: str, user_turns: list[str]) -> bool:
        """The reply repeats a user turn: its words are a run inside one, or most of its word pairs are copied."""
        words = _words(response)
        if not words:
            return False
        joined = " " + " ".join(words) + " "
        pairs = set(zip(words, words[1:], strict=False))
        for turn in user_turns:
            turn_words = _words(turn)
            if joined in " " + " ".join(turn_words) + " ":
                return True
            if pairs and len(pairs & set(zip(turn_words, turn_words[1:], strict=False))) >= 0.7 * len(pairs):
                return True
        return False

    def reward(self, history: list[str], prompt: str, response: str) -> float:
        if not response.strip() or self.echoes(response, [prompt, *history[-2::-2]]):
            return 0.0
        mood = self.state_mood(history, prompt)
        strength = min(1.0, abs(mood) / self.full_mood)
        return strength * min(1.0, self.cues(response, mood) / self.cues_for_full)

    def __call__(self, histories: list[list[str]], prompts: list[str], responses: list[str]) -> list[float]:
        return [self.reward(h, p, r) for h, p, r in zip(histories, prompts, responses, strict=True)]
