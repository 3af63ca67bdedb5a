"""Sentiment-history: a reward for answering in tune with how the conversation has felt so far.

The paper feeds "sentiment analysis of the conversation history" into the reward. egail makes that concrete:

1. The *mood of the state* is the VADER compound score of the user's utterances (the prompt and the user's
   earlier turns), each earlier turn discounted by ``decay`` so the latest message counts most but a
   conversation that has been sad for a while still reads as sad after one neutral line.
2. The *target* for the response is that mood, with negative moods halved (``negative_scale``): an
   empathetic listener acknowledges sadness ("I'm sorry, that sounds hard") without amplifying despair,
   and shares joy at full strength.
3. The reward is ``1 - |s(response) - target| / 2`` in [0, 1]: highest when the response's own sentiment
   matches the target. A cheerful reply to grief, or a gloomy reply to good news, scores low.

It is a shaping term added to the discriminator's reward with ``sentiment_history_weight`` (0 turns it off),
not a replacement: the discriminator judges content, this term judges tone.
"""

from __future__ import annotations

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class SentimentHistory:
    """Scores responses by how well their sentiment fits the discounted sentiment of the user's turns."""

    def __init__(self, decay: float = 0.5, negative_scale: float = 0.5):
        if not 0.0 <= decay <= 1.0 or not 0.0 <= negative_scale <= 1.0:
            raise ValueError("decay and negative_scale must be in [0, 1]")
        self.decay = decay
        self.negative_scale = negative_scale
        self._vader = SentimentIntensityAnalyzer()

    def compound(self, text: str) -> float:
        """VADER compound score in [-1, 1]."""
        return self._vader.polarity_scores(text)["compound"] if text.strip() else 0.0

    def state_mood(self, history: list[str], prompt: str) -> float:
        """Discounted mean compound of the user's utterances: the prompt, then every second utterance back."""
        user_turns = [prompt, *history[-2::-2]]  # newest first; history ends with an assistant turn
        weights = [self.decay**age for age in range(len(user_turns))]
        total = sum(w * self.compound(u) for w, u in zip(weights, user_turns))
        return total / sum(weights)

    def target(self, mood: float) -> float:
        return mood if mood >= 0 else mood * self.negative_scale

    def reward(self, history: list[str], prompt: str, response: str) -> float:
        return 1.0 - abs(self.compound(response) - self.target(self.state_mood(history, prompt))) / 2.0

    def __call__(self, histories: list[list[str]], prompts: list[str], responses: list[str]) -> list[float]:
        return [self.reward(h, p, r) for h, p, r in zip(histories, prompts, responses, strict=True)]
