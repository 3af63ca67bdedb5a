"""One rendering of a dialogue state for training, SFT, evaluation and chat."""

from egail.formatting import build_messages, render_plain, render_prompt, truncate_history


def test_history_alternates_and_the_prompt_is_the_user():
    messages = build_messages(["u1", "a1", "u2", "a2"], "u3", system="be kind")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"] == "u3"


def test_odd_history_still_ends_with_the_assistant_before_the_prompt():
    roles = [m["role"] for m in build_messages(["a0", "u1", "a1"], "u2")]
    assert roles == ["assistant", "user", "assistant", "user"]


def test_truncate_history_keeps_the_latest_turns():
    history = ["u1", "a1", "u2", "a2", "u3", "a3"]
    assert truncate_history(history, 1) == ["u3", "a3"]
    assert truncate_history(history, 0) == []
    assert truncate_history(history, None) == history


def test_plain_format_for_models_without_a_chat_template():
    text = render_plain(build_messages(["I lost my keys."], "Any ideas?"))
    assert text == "Assistant: I lost my keys.\nUser: Any ideas?\nAssistant: "


def test_chat_template_is_used_when_present(tiny_lm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_path)
    text = render_prompt(tokenizer, ["I lost my keys.", "Oh no!"], "Any ideas?")
    assert text.rstrip().endswith("<|im_start|>assistant")
    assert text.index("I lost my keys.") < text.index("Oh no!") < text.index("Any ideas?")
