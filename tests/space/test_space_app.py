"""The Space's logic and its API through gradio_client: history per session, bad input, errors, load."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from egail.models import DEFAULT_CHATBOT
from egail.safety import CRISIS_REPLY
from tests.space.helpers import FAIL_MESSAGE, RecordingResponder


def test_clean_message_handles_bad_input(space_app):
    assert space_app.clean_message("") == ("", space_app.EMPTY_REPLY)
    assert space_app.clean_message("   \n\t ") == ("", space_app.EMPTY_REPLY)
    assert space_app.clean_message(None) == ("", space_app.EMPTY_REPLY)
    assert space_app.clean_message("\x00\x01\x02\x1b\ufffd\ud800") == ("", space_app.JUNK_REPLY)
    assert space_app.clean_message("he\x00llo\x1b there\u200b\nfriend") == ("hello there\nfriend", None)
    assert space_app.clean_message({"text": "hi", "files": []}) == ("hi", None)
    text, polite = space_app.clean_message("x" * 20_000)
    assert len(text) == 20_000 and "20,000" in polite and f"{space_app.MAX_MESSAGE_CHARS:,}" in polite


def test_gradio_history_becomes_alternating_utterances(space_app):
    convert = space_app.history_to_utterances
    messages = [
        {"role": "user", "content": "I lost my job."},
        {"role": "assistant", "content": [{"type": "text", "text": "I'm sorry."}]},
        {"role": "assistant", "content": "What happened?"},
        {"role": "user", "content": [{"type": "text", "text": "Layoffs."}, {"type": "file", "file": {}}]},
    ]
    assert convert(messages) == ["I lost my job.", "I'm sorry.\nWhat happened?", "Layoffs."]
    assert convert([{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "hi"}]) == ["hi"]
    assert convert([["hi", "hello"], ["how are you", "fine"]]) == ["hi", "hello", "how are you", "fine"]
    assert convert([]) == [] and convert(None) == []


def test_default_model_follows_the_environment(space_app, monkeypatch):
    monkeypatch.setenv("EGAIL_MODEL", "someone/their-model")
    assert space_app.default_model() == "someone/their-model"
    monkeypatch.delenv("EGAIL_MODEL")
    assert space_app.default_model() == DEFAULT_CHATBOT  # the adapter shipped inside egail: starts offline


def test_chat_turn_reads_the_message_and_answers(space_app, tiny_responder, emotion_reader):
    app = space_app.ChatApp(tiny_responder, emotion_reader)
    reply, emotions, note = app.chat("I'm so happy, my sister had her baby today!", [])
    assert reply.strip()
    assert max(emotions, key=emotions.get) == "joy"
    assert abs(sum(emotions.values()) - 1) < 1e-4
    assert "positive" in note


def test_crisis_is_answered_even_in_a_message_too_long_for_the_model(space_app, tiny_responder):
    app = space_app.ChatApp(tiny_responder, None)
    reply, _, note = app.chat("blah " * 5000 + "and honestly I want to end it all", [])
    assert reply == CRISIS_REPLY and "crisis guard answered" in note


def test_a_crisis_spread_over_turns_is_answered_without_the_model(space_app, tiny_responder):
    recording = RecordingResponder(tiny_responder)
    app = space_app.ChatApp(recording, None)
    history = [
        {"role": "user", "content": "I can't do this anymore"},
        {"role": "assistant", "content": "I'm sorry it's so hard. What's going on?"},
        {"role": "user", "content": "nobody gets it"},
        {"role": "assistant", "content": "That sounds lonely."},
    ]
    reply, _, note = app.chat("I have the pills here", history)
    assert reply == CRISIS_REPLY and "crisis guard answered" in note
    assert recording.calls == [], "the model must not be called"


def test_a_failing_turn_is_logged_not_shown(space_app, tiny_responder, caplog):
    app = space_app.ChatApp(RecordingResponder(tiny_responder), None)
    with caplog.at_level(logging.ERROR, logger="egail.space"):
        reply, emotions, note = app.chat(FAIL_MESSAGE, [])
    assert reply == space_app.ERROR_REPLY and emotions is None
    assert "/secret" not in reply + note and "Traceback" not in reply + note
    assert "/secret/server/path" in caplog.text


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_api_keeps_history_per_session(served_app):
    url, recorder = served_app
    alice, bob = _client(url), _client(url)
    assert "/chat" in alice.view_api(print_info=False, return_format="dict")["named_endpoints"]
    recorder.calls.clear()
    a1 = alice.predict("I failed my driving test.", api_name="/chat")[0]
    b1 = bob.predict("My cat is sick.", api_name="/chat")[0]
    a2 = alice.predict("I have to wait a month to retry.", api_name="/chat")[0]
    a3 = alice.predict("Thanks for listening.", api_name="/chat")[0]
    b2 = bob.predict("The vet visit is tomorrow.", api_name="/chat")[0]
    assert all(isinstance(r, str) and r.strip() for r in (a1, a2, a3, b1, b2))
    histories = {message: history for history, message in recorder.calls}
    assert histories["I failed my driving test."] == []
    assert histories["I have to wait a month to retry."] == ["I failed my driving test.", a1]
    assert histories["Thanks for listening."] == [
        "I failed my driving test.",
        a1,
        "I have to wait a month to retry.",
        a2,
    ]
    assert histories["The vet visit is tomorrow."] == ["My cat is sick.", b1], "sessions never mix"


def test_api_answers_bad_input_politely_and_keeps_serving(served_app, space_app):
    url, _ = served_app
    client = _client(url)
    junk = bytes(range(256)).decode("latin-1") * 4
    answers = {
        "empty": client.predict("", api_name="/chat")[0],
        "huge": client.predict("words " * 3333 + "ok", api_name="/chat")[0],
        "junk": client.predict(junk, api_name="/chat")[0],
        "fail": client.predict(FAIL_MESSAGE, api_name="/chat")[0],
    }
    assert answers["empty"] == space_app.EMPTY_REPLY
    assert answers["huge"].startswith("Your message is 20,000 characters long")
    assert answers["junk"].strip() and "Traceback" not in answers["junk"]
    assert answers["fail"] == space_app.ERROR_REPLY
    assert client.predict("Are you still there?", api_name="/chat")[0].strip()


def test_many_quick_messages_all_get_answers(served_app):
    url, _ = served_app

    def one_user(i: int) -> str:
        return _client(url).predict(f"Quick message number {i}", api_name="/chat")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(one_user, range(12)))
    assert len(replies) == 12 and all(isinstance(r, str) and r.strip() for r in replies)


def test_page_shows_the_research_demo_notice(served_app):
    import httpx

    url, _ = served_app
    config = httpx.get(url + "config", timeout=30).json()
    text = str(config)
    assert "research demo, not therapy" in text and "988" in text


def test_the_default_chatbot_page_shows_its_card_and_the_licenses_of_its_data(space_app):
    """Offline (no dataset cards to read), the licenses come from the shipped record, not from typed text."""
    name = DEFAULT_CHATBOT
    page = space_app.describe_model(name, space_app.load_model_card(name), space_app.shipped_licenses(name))
    assert f"`{name}`" in page and "license cc-by-nc-sa-4.0" in page
    assert "`facebook/empathetic_dialogues`](" in page and "(cc-by-nc-4.0)" in page
    assert "`li2017dailydialog/daily_dialog`](" in page and "(cc-by-nc-sa-4.0)" in page
    assert space_app.shipped_licenses("/no/such/folder") == {}
