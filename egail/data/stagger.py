"""The paper's staggering rule (§4.2): one expert trajectory per turn of a conversation.

A turn is an utterance of the first speaker (the prompt) and the other speaker's reply (the response):
(u1, u2), (u3, u4), ... Turn k's history is every utterance before its prompt, u1 .. u_{2k-2}, so it
alternates user/assistant and starts with the user. A last utterance that nobody answered makes no turn.
A one-liner (the paper's uplifting tweets) makes one row with no history and prompt = response.
"""

from __future__ import annotations

from typing import Any

from egail.data.conversation import Conversation
from egail.schema import ONELINERS_SOURCE

STAGGERING_RULE = (
    "Each conversation u1, u2, ..., un (speakers alternating, the speaker who opens first) gives one row per "
    "turn k = 1 .. floor(n/2): history = [u1 .. u(2k-2)], prompt = u(2k-1), response = u(2k). An unanswered "
    "last utterance gives no row. A one-liner gives one row: history = [], prompt = response = the text."
)


def stagger(conversation: Conversation) -> list[dict[str, Any]]:
    """The rows (trajectories) of one conversation. A row's emotion is its prompt utterance's label when
    the corpus labels utterances (DailyDialog), else the conversation's label (EmpatheticDialogues)."""
    utterances = conversation.utterances
    if conversation.source == ONELINERS_SOURCE:
        if len(utterances) != 1:
            raise ValueError(f"{conversation.conv_id}: a one-liner has one utterance, got {len(utterances)}")
        turns = [([], utterances[0], utterances[0], conversation.emotion)]
    else:
        labels = conversation.utterance_emotions or [conversation.emotion] * len(utterances)
        turns = [
            (utterances[:i], utterances[i], utterances[i + 1], labels[i]) for i in range(0, len(utterances) - 1, 2)
        ]
    return [
        {
            "conv_id": conversation.conv_id,
            "turn": turn,
            "history": list(history),
            "prompt": prompt,
            "response": response,
            "emotion": emotion,
            "situation": conversation.situation,
            "source": conversation.source,
        }
        for turn, (history, prompt, response, emotion) in enumerate(turns, start=1)
    ]
