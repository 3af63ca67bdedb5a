"""Discriminator: reward transforms, learning a separable set, save/load, any encoder."""

from __future__ import annotations

import pytest
import torch

from egail.discriminator import Discriminator, DiscriminatorConfig, binary_accuracy, reward_from_logits


def test_reward_transforms_equal_their_formulas():
    logits = torch.tensor([-4.0, -0.5, 0.0, 0.7, 5.0])
    d = torch.sigmoid(logits)
    torch.testing.assert_close(reward_from_logits(logits, "log_d"), torch.log(d))
    torch.testing.assert_close(reward_from_logits(logits, "neg_log_one_minus_d"), -torch.log(1 - d))
    torch.testing.assert_close(reward_from_logits(logits, "logit"), torch.log(d) - torch.log(1 - d))
    with pytest.raises(ValueError, match="unknown reward form"):
        reward_from_logits(logits, "d")


def test_loss_is_the_gail_log_loss():
    expert, generated = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])
    expected = -torch.log(torch.sigmoid(expert)).mean() - torch.log(1 - torch.sigmoid(generated)).mean()
    torch.testing.assert_close(Discriminator.loss(expert, generated), expected)


def test_head_follows_the_paper(tiny_encoder_path):
    disc = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path))
    layers = list(disc.head)
    assert isinstance(layers[0], torch.nn.LayerNorm) and layers[0].eps == 1e-5
    linear = [m for m in layers if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [100, 100, 1]
    assert sum(isinstance(m, torch.nn.Tanh) for m in layers) == 2


def test_learns_a_separable_toy_set(tiny_encoder_path):
    torch.manual_seed(0)
    disc = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path))
    optimizer = torch.optim.AdamW(disc.parameters(), lr=1e-3, weight_decay=0.01)
    states = ([["I failed my exam."]] * 8, ["What should I do?"] * 8)
    expert = [f"That sounds really hard, I am sorry. Take a breath, step {i}." for i in range(8)]
    generated = [f"zz qq xx {i} banana banana" for i in range(8)]
    losses = []
    for _ in range(60):
        logits = disc.logits(states[0] * 2, states[1] * 2, expert + generated)
        loss = Discriminator.loss(logits[:8], logits[8:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        logits = disc.logits(states[0] * 2, states[1] * 2, expert + generated)
    accuracy = (binary_accuracy(logits[:8], True) + binary_accuracy(logits[8:], False)) / 2
    assert accuracy > 0.95
    assert losses[-1] < 0.5 * losses[0]


def test_save_and_load_round_trip(tmp_path, tiny_encoder_path):
    disc = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path, hidden_sizes=[16, 8], freeze_encoder=True))
    disc.save_pretrained(tmp_path / "d")
    assert (tmp_path / "d" / "model.safetensors").is_file() and (tmp_path / "d" / "config.json").is_file()
    loaded = Discriminator.from_pretrained(tmp_path / "d")
    assert loaded.config.hidden_sizes == [16, 8] and loaded.config.freeze_encoder
    args = ([[], ["a", "b"]], ["hello", "how are you"], ["hi!", "fine, thanks"])
    torch.testing.assert_close(loaded.score(*args), disc.score(*args))


def test_frozen_encoder_gets_no_gradients(tiny_encoder_path):
    disc = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path, freeze_encoder=True))
    logits = disc.logits([[]], ["hello"], ["hi"])
    logits.sum().backward()
    assert all(p.grad is None for p in disc.encoder.parameters())
    assert all(p.grad is not None for p in disc.head.parameters())


def test_long_states_are_cut_from_the_oldest_history(tiny_encoder_path):
    disc = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path, max_length=32))
    history = [f"old utterance number {i} with several words" for i in range(40)]
    batch = disc.tokenize([history], ["the latest prompt"], ["the response"])
    text = disc.tokenizer.decode(batch["input_ids"][0])
    assert batch["input_ids"].shape[1] == 32
    assert "latest prompt" in text and "the response" in text and "number 0 " not in text


def test_missing_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a folder written by Discriminator.save_pretrained"):
        Discriminator.from_pretrained(tmp_path / "empty")


@pytest.mark.slow
def test_embedded_minilm_encoder_scores(minilm_path):
    disc = Discriminator(DiscriminatorConfig(encoder="minilm-l6"))
    scores = disc.score([[]], ["I lost my job today."], ["I'm so sorry, that must be a shock."])
    assert scores.shape == (1,) and 0 < scores.item() < 1
