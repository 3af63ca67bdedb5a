"""What the demo shows about the user's message: its sentiment (VADER) and its closest emotion.

Sentiment is VADER's compound score, a well-known lexicon method. Emotion is a nearest-centroid reading
with the embedded MiniLM sentence encoder: each of DailyDialog's seven emotion classes is the mean
embedding of a few hand-written example sentences, and a message gets the class whose centroid is most
similar. It is zero-shot and rough: the scores are a softmax over cosine similarities, not calibrated
probabilities, and the demo says so. ``tests/space/test_space_emotion.py`` measures it on DailyDialog.
"""

from __future__ import annotations

from dataclasses import dataclass

#: DailyDialog's emotion classes ("no emotion" shown as neutral), each with hand-written examples.
PROTOTYPES: dict[str, list[str]] = {
    "neutral": [
        "What time does the store open tomorrow?",
        "I went to the office and then came home.",
        "Can you tell me where the station is?",
        "I usually have coffee in the morning.",
        "The meeting is scheduled for Tuesday.",
        "Okay, I will send you the file later.",
    ],
    "joy": [
        "I'm so happy, I finally got the job!",
        "This is the best day of my life.",
        "I'm thrilled, we won the championship!",
        "That's wonderful news, congratulations!",
        "I love spending time with my family, it makes me so glad.",
        "I feel great today, everything is going well.",
    ],
    "sadness": [
        "I feel so sad and lonely since she left.",
        "My grandmother passed away and I miss her terribly.",
        "I failed the exam and I feel awful.",
        "I'm heartbroken, we broke up yesterday.",
        "Nothing seems to go right for me lately, I feel down.",
        "I cried all night after hearing the news.",
    ],
    "anger": [
        "I'm furious, he lied to me again!",
        "It makes me so angry when people cut in line.",
        "I can't believe they cancelled my order without telling me, this is outrageous.",
        "Stop yelling at me, I'm sick of it!",
        "My coworker took credit for my work and I'm livid.",
        "I'm so mad at my landlord for ignoring the leak.",
    ],
    "fear": [
        "I'm terrified of flying.",
        "I heard a noise downstairs last night and I was so scared.",
        "I'm really anxious about the surgery next week.",
        "I'm afraid I'll lose my job.",
        "Walking home alone in the dark frightens me.",
        "I'm nervous and worried something bad will happen.",
    ],
    "surprise": [
        "Wow, I didn't expect that at all!",
        "Really? I can't believe she's pregnant!",
        "What a surprise to see you here!",
        "I was shocked when they told me the news.",
        "No way, you bought a house already?",
        "I was amazed by how quickly it happened.",
    ],
    "disgust": [
        "That's disgusting, there was a hair in my soup.",
        "The bathroom was filthy and it smelled awful.",
        "I find the way he treats animals revolting.",
        "Ew, the milk has gone sour.",
        "It's gross how they leave garbage everywhere.",
        "I'm repulsed by people who cheat like that.",
    ],
}

_SOFTMAX_TEMPERATURE = 0.05


@dataclass(frozen=True)
class Sentiment:
    compound: float
    label: str


def vader_sentiment(text: str, analyzer=None) -> Sentiment:
    """VADER's compound score and its usual label (>= 0.05 positive, <= -0.05 negative)."""
    if analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyzer = SentimentIntensityAnalyzer()
    compound = float(analyzer.polarity_scores(text)["compound"])
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    return Sentiment(compound, label)


class EmotionReader:
    """Nearest-centroid emotion with a sentence encoder (mean-pooled, normalised, as MiniLM was trained)."""

    def __init__(self, encoder: str = "minilm-l6", prototypes: dict[str, list[str]] | None = None):
        import torch

        from egail.models import load_sentence_encoder

        self.tokenizer, self.model = load_sentence_encoder(encoder)
        self.labels = list((prototypes or PROTOTYPES).keys())
        centroids = [self.embed(examples).mean(0) for examples in (prototypes or PROTOTYPES).values()]
        self.centroids = torch.nn.functional.normalize(torch.stack(centroids), dim=-1)

    def embed(self, texts: list[str]):
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def scores(self, text: str) -> dict[str, float]:
        """Each emotion's share of a softmax over cosine similarities to the class centroids."""
        import torch

        similarities = self.embed([text]) @ self.centroids.T
        shares = torch.softmax(similarities[0] / _SOFTMAX_TEMPERATURE, dim=-1)
        return {label: float(share) for label, share in zip(self.labels, shares, strict=True)}

    def predict(self, texts: list[str]) -> list[str]:
        similarities = self.embed(texts) @ self.centroids.T
        return [self.labels[i] for i in similarities.argmax(-1).tolist()]
