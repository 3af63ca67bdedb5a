"""A crisis guard in front of the chatbot.

A small language model must not be the one to answer someone who says they want to die, or that they
are in danger: such messages get a fixed, supportive reply that points to people who can help, and the
model is not called. The model's own replies are screened too, because a sampled reply can encourage
harm or describe a method even when the user's message was harmless.

The guard has two parts, OR-ed, because each covers the other's blind spot:

- **Rules** (regular expressions with explicit exceptions for common idioms and a narrow negation check):
  transparent, instant, and they never miss the explicit phrasings someone wrote a pattern for. They
  cannot reach the indirect ones ("the pills are in my pocket", "tell my mum I love her"), which is how
  people in crisis most often speak, without drowning in false alarms ("this exam is killing me").
- **A classifier**: all-MiniLM-L6-v2 fine-tuned with LoRA, with two softmax heads (an ensemble of such
  models from different seeds, their probabilities averaged), trained by
  ``python -m egail.safety_train`` on the train split of the team-written sets in ``egail/safety_data/``
  and on ordinary turns of EmpatheticDialogues and DailyDialog. The message head tells the warning signs
  from ordinary text (its threshold chosen on the dev split for recall at precision 0.92); it also reads the
  last few user turns together, so a warning sign spread over turns ("I can't do this anymore" ... "I have
  the pills here") is caught, and a conversation stays with the crisis reply while a crisis is among its
  last turns. The reply head tells a reply that encourages harm or gives a method from an
  ordinary or a supportive one.

It leans towards flagging: a false alarm costs one unneeded pointer to a helpline, a miss costs far
more. For the same reason it fails safe: if checking a message raises, the failure is logged and the
message is treated as flagged; if the encoder cannot load, the rules still run and every result says so
(``degraded``). Figures on the test split are printed by ``tests/test_safety.py`` and in the README.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

logger = logging.getLogger(__name__)

SELF_HARM = "self_harm"
HARM_TO_OTHERS = "harm_to_others"
ABUSE = "abuse"
UNSAFE_OUTPUT = "unsafe_output"
CATEGORIES = (SELF_HARM, HARM_TO_OTHERS, ABUSE)

CRISIS_LINES = (
    "If you are in immediate danger, please call your local emergency number (911 in the US, 999 in the UK, "
    "112 in the EU). In the US you can call or text 988 (Suicide & Crisis Lifeline); in the UK and Ireland "
    "you can call Samaritans on 116 123; elsewhere, findahelpline.com lists free, confidential lines in "
    "your country."
)

CRISIS_REPLY = (
    "I'm really sorry you're going through this, and I'm glad you said something. You deserve support from "
    "a real person right now, and I'm only a research chatbot, not a counsellor. Please reach out to a "
    "doctor, a mental health professional, or someone you trust. " + CRISIS_LINES
)

UNSAFE_OUTPUT_REPLY = (
    "I'm sorry, I can't answer that way. If something painful is going on, talking to someone you trust or "
    "to a professional can really help. " + CRISIS_LINES
)


#: Which part of the guard decided: a pattern, the classifier on the message, the classifier on the last
#: few user turns together, or a failure of the guard itself (fail safe: flagged).
RULE, CLASSIFIER, CONTEXT, ERROR = "rule", "classifier", "context", "error"

#: The warning signs the classifier tells apart, each with the category the rest of egail reports.
SIGNS: dict[str, str] = {
    "ideation": SELF_HARM,  # wanting to die, said in any words
    "plan_means": SELF_HARM,  # a plan, a time, a place, or the means at hand
    "farewell": SELF_HARM,  # goodbyes, notes, giving things away, affairs put in order
    "burden": SELF_HARM,  # others would be better off without me
    "disappear": SELF_HARM,  # wanting to vanish, sleep for ever, not wake up
    "self_injury": SELF_HARM,  # self-injury or an overdose already done
    "voices": SELF_HARM,  # voices commanding harm (to self, mostly; to others too)
    "harm_to_others": HARM_TO_OTHERS,
    "abuse": ABUSE,
}
NONE = "none"
#: What the output screen's classifier looks for in a model's reply.
REPLY_SIGNS = ("encouragement", "method")  # encouraging or validating harm; means, places, timing, hiding it

CLASSIFIER_WEIGHTS = "guard_classifier.json"  # classes, thresholds, LoRA settings, training record
CLASSIFIER_TENSORS = "guard_classifier.safetensors"  # the head and the encoder's LoRA factors
#: How many user turns (the latest included) the context check reads.
CONTEXT_TURNS = 3
# Characters of each turn the classifier reads: MiniLM reads 256 tokens at most; a huge message is read
# at its start and its end, where a crisis is most likely to be said, and the rules read all of it.
_PIECE_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


@dataclass(frozen=True)
class GuardResult:
    """The guard's decision on one text, and why.

    ``category`` is the coarse category (self_harm, harm_to_others, abuse, unsafe_output); ``source``
    says which part fired (``rule``, ``classifier``, ``context``, ``error``); ``matched`` is the rule's
    matched (normalised) text; ``sign`` is the classifier's closest warning sign; ``score`` is its
    probability that the text is not ordinary, to compare with ``threshold``. ``degraded`` is true when the
    classifier was unavailable and only the rules ran.
    """

    flagged: bool
    category: str | None = None
    matched: str | None = None
    source: str | None = None
    sign: str | None = None
    score: float | None = None
    threshold: float | None = None
    degraded: bool = False
    reason: str = ""


def normalize(text: str) -> str:
    """Lower-case, straight apostrophes, single spaces: what the patterns are written against."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return re.sub(r"\s+", " ", text).strip()


def as_text(value: Any) -> str:
    """Any input as text the guard can read: None is empty, bytes are decoded, control characters go."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    return _CONTROL.sub(" ", value if isinstance(value, str) else str(value))


# Building blocks. `SELF` accepts "myself" and "my self"; `PERSON` is deliberately a closed list of
# people, so that "kill the process" or "kill this exam" never reads as a threat to someone.
SELF = r"my ?self"
RELATIVE = (
    r"(?:husband|wife|partner|boyfriend|girlfriend|bf|gf|ex|dad|father|mom|mum|mother|step ?dad|"
    r"step ?father|step ?mom|step ?mum|step ?mother|parents?|brother|sister|son|daughter|uncle|aunt|"
    r"grandpa|grandfather|grandma|grandmother|cousin|teacher|coach|carer|caregiver|roommate|flatmate)"
)
PERSON = (
    r"(?:him|her|them|you|u|someone|somebody|everyone|everybody|anyone|anybody|people|"
    r"(?:my|his|her|their|that|the|this|our) (?:[\w']+ ){0,2}(?:" + RELATIVE[3:-1] + r"|neighbou?rs?|boss|"
    r"manager|landlord|coworkers?|co-workers?|colleagues?|classmates?|friends?|family|kids?|children|"
    r"child|baby|students?|guy|girl|man|woman|bull(?:y|ies)))"
)
ABUSER = r"\b(?:he|she|they|my " + RELATIVE + r")"
INTENT = (
    r"(?:'ll|\b(?:want|wants|wanna|wanted|going|gonna|will|plan|plans|planning|intend|intending|thinking about|"
    r"thinking of|think about|thought about|fantasi[sz]e about|fantasi[sz]ing about|could|ready|need|"
    r"urge|tempted|feel like|keep|started|start|been|about|imagine|imagining|picture|picturing|dream about|"
    r"dreaming about|daydream about|daydreaming about))"
)
KILL_VERB = (
    r"(?:kill(?:ing)?|murder(?:ing)?|hurt(?:ing)?|stab(?:bing)?|shoot(?:ing)?|strangl(?:e|ing)|"
    r"chok(?:e|ing)|beat(?:ing)? up|attack(?:ing)?|poison(?:ing)?|punch(?:ing)?|slap(?:ping)?|"
    r"smother(?:ing)?|run(?:ning)? over|run (?:him|her|them) over)"
)
WEAPON = r"(?:gun|rifle|pistol|shotgun|knife|knives|machete|bomb|explosives?|weapons?)"

_RAW_PATTERNS: dict[str, list[str]] = {
    SELF_HARM: [
        r"\b(?:kill|killing|killed|hang|hanging|hanged|shoot|shooting|drown|drowning|poison|poisoning|"
        r"unalive|unaliving) " + SELF + r"\b",
        r"(?<!\d)(?<!\d )\bkms\b",
        r"\bsuicid(?:e|al|ality)\b(?! (?:squad|doors?|mission|run|bomb\w*|king)\b)",
        r"(?<!the )\bend(?:ing)? (?:it all|my (?:own )?life|(?:it|things|everything) (?:for good|tonight|today|now))\b",
        r"(?<!the )\bend(?:ing)? (?:things|everything)\b(?! (?:with|between|at|for the)\b)",
        r"\b(?:want|need|wish|want for) (?:it all|everything|my life|all of (?:this|it)) to (?:be over|end|stop)\b",
        r"\btak(?:e|ing) my (?:own )?life\b",
        (
            r"\b(?:(?:don't|do not|dont|can't|cannot|cant) (?:see|find|have|think of) )?(?:no|any|a|the) reason "
            r"(?:left )?to (?:live|go on|keep going|be alive|stay alive)\b"
            r"(?! (?:in|at|near|with|here|there|close)\b)"
        ),
        r"\bnothing (?:left )?to live for\b",
        r"\b(?:better|happier) (?:off )?without me\b",
        r"\bbetter off dead\b",
        (
            r"\b(?:better off|happier|better) (?:if i (?:was|were|wasn't|weren't) (?:here|alive|around|dead|gone)|"
            r"if i died)\b"
        ),
        r"\bwish (?:that )?i (?:was|were|could be) dead\b",
        r"\bwish (?:that )?i (?:had|'d)? ?never (?:been|was) born\b",
        (
            r"\b(?:want|wants|wanna|wanted|ready|deserve|deserves|deserved) (?:to )?die\b"
            r"(?! (?:my|her|his|their|your|the) hair\b)(?! (?:of|from) (?:embarrassment|laughter|boredom|shame|"
            r"cuteness))"
        ),
        (
            r"\b(?:don't|do not|dont|doesn't|does not|no longer|never) (?:want to|wants to|wanna|wish to) "
            r"(?:be alive|live|exist|wake up)\b"
            r"(?! (?:in|at|near|with|here|there|like)\b)"
        ),
        (
            r"\b(?:can'?t|cannot|can not|don't think i can|unable to) (?:go on|keep|continue|carry on) (?:living|"
            r"being alive|with (?:my )?life)\b"
        ),
        (
            r"\b(?:what's|what is|whats|there's no|there is no|no) (?:the )?point (?:of|in) (?:living|life|being alive|"
            r"going on|staying alive|waking up)\b"
        ),
        r"\b(?:want|wanna|wish|hope|pray|praying|hoping)\b[^.!?]{0,30}\bnever (?:to )?wake up\b",
        r"\b(?:goodbye|suicide|farewell) (?:letters?|notes?)\b",
        r"\b(?:tired|sick) of (?:being alive|living|life|existing)\b",
        r"\b(?:want|wanna|wish i could|going|gonna) (?:to )?disappear (?:forever|for good|permanently)\b",
        r"\b(?:think|thinking|thought|thoughts) (?:about|of) (?:dying|death|being dead|not being here|not existing)\b",
        r"\bno way out\b[^.!?]{0,30}\b(?:death|dying|die|suicide)\b",
        r"\bdeath is the only\b",
        r"\bgiv(?:e|ing) away (?:all )?my (?:things|stuff|belongings|possessions)\b",
        r"\b(?:my )?last (?:day|night|week|month) (?:on earth|alive|of my life)\b",
        (
            r"\b(?:cut|cutting|burn|burning|scratch|scratching|carve|carving) (?:into )?my (?:skin|arms?|wrists?|thighs?|"
            r"legs?|stomach)\b(?! (?:on|shaving|by accident|accidentally|while)\b)"
        ),
        r"\bnoose\b",
        r"\b(?:a|the|my) rope\b[^.!?]{0,60}\b(?:using it|use it|hang|neck)\b",
        r"\b(?:on|at|off) the (?:edge|ledge) of (?:the|a|my) (?:roof|bridge|cliff|balcony|building|platform|tower)\b",
        r"\b(?:until|till|'til) (?:it|they|i|my \w+) (?:bleeds?|bled|bruises?|bruised)\b",
        (
            r"\bhow many (?:\w+ ){0,2}(?:pills|tablets|painkillers|paracetamol|tylenol|ibuprofen|aspirin)\b"
            r"(?: \w+){0,3} (?:(?:would|does|will) it take|it (?:would|will|'d) take)\b"
        ),
        # Self-harm said with intent is flagged as is; a bare "cut myself" may be an accident.
        INTENT + r" (?:to )?(?:hurt|harm|cut|burn|starve|punish)(?:ing|ting)? " + SELF + r"\b",
        r"\b(?:hurt|hurting|harm|harming|cut|cutting|burn|burning|burned|burnt|starve|starving) "
        + SELF
        + r"\b(?! (?:shaving|while|when|on|by accident|accidentally|playing|at the gym|at work|in the kitchen|"
        r"(?:a|another) (?:slice|piece|bit|cup|break)|some|(?!cutting|burning)\w+ing\b))",
        r"\bself[- ]?harm(?:ing|ed)?\b",
        r"\boverdos(?:e|ed|ing)\b",
        (
            r"\b(?:take|taking|took|swallow|swallowing|swallowed) (?:all|every one|a (?:whole )?(?:bottle|handful|"
            r"box|bunch|packet) of|enough) (?:of )?(?:my |the |those |these )?(?:sleeping )?(?:pills|tablets|meds|"
            r"medication|painkillers)\b"
        ),
        (
            r"\bjump(?:ing)? (?:off|from|in front of) (?:a|the|this|that|my) (?:bridge|building|roof|cliff|balcony|"
            r"train|window|tower|car|bus|ledge)\b"
        ),
        r"\b(?:slit|slash|slitting|slashing|cut|cutting) (?:my|both) wrists?\b",
        r"\b(?:no ?one|nobody) would (?:even )?(?:notice|care|miss me) if i (?:died|was gone|were gone|"
        r"disappeared|wasn't (?:here|around)|weren't (?:here|around)|killed " + SELF + r")",
        r"\b(?:kill|killing|hang|hanging) (?:him|her|them|your)sel(?:f|ves)\b",
        (
            r"\b(?:going|gonna|wants?|wanted|trying|tried|threatening|threatened|talking about|talks about|"
            r"thinking about|plans?|planning) (?:to )?(?:hurt|harm|cut)(?:ing|ting)? (?:him|her|them|your)"
            r"sel(?:f|ves)\b"
        ),
    ],
    HARM_TO_OTHERS: [
        INTENT
        + r" (?:how |ways )?(?:to )?(?:really |actually |literally |seriously )?"
        + KILL_VERB
        + r" "
        + PERSON
        + r"\b"
        r"(?! (?:at|in) (?:chess|tennis|cards|a game|the game|mario kart|fifa|poker|golf|pool))"
        r"(?! (?:feelings|chances))",
        r"\bpoison (?:his|her|their|my \w+'s) (?:drink|food|coffee|tea|meal|water)\b",
        r"\b(?:bring|take|carry|brought|took|carried|bringing|taking|carrying) (?:a|my|the|dad's|his|her) "
        + WEAPON
        + r" (?:to|into) (?:school|work|class|the office|college|church|the mall|campus)\b",
        r"\b(?:get|getting|got|grab|grabbing|take|taking|bring|bringing|load|loading) (?:my |his |her |a |the )?"
        r"(?:\w+'s )?" + WEAPON + r"\b[^.!?]{0,40}\b(?:to|into) (?:school|work|class|the office|college|church|"
        r"the mall|campus)\b",
        r"\b(?:use|using) (?:it|the gun|the knife|my gun|a gun|my knife|a knife) on " + PERSON + r"\b",
        r"\bshoot (?:up|everyone|everybody|people)\b(?! (?:heroin|drugs))",
        r"\b(?:make|build|making|building) (?:a|an) (?:bomb|explosive|pipe bomb)\b",
        r"\b(?:set|setting) (?:his|her|their|my [\w']+|the) (?:house|car|home|apartment|flat|place) on fire\b",
        r"\bburn(?:ing)? down (?:his|her|their|my [\w']+) (?:house|home|place|apartment|flat)\b",
        r"\bmake (?:them|him|her|everyone|everybody) (?:all )?pay\b(?! for\b)",
    ],
    ABUSE: [
        ABUSER + r" (?:\w+ )?(?:hits|hit|beats|kicks|kicked|punches|punched|slaps|slapped|chokes|choked|"
        r"strangles|strangled|hurts|burns|burned|abuses|abused|rapes|raped|threatens|touches|touched|pushes|"
        r"shoves|shoved|locks|lock|locked|will (?:hit|beat|hurt|kick|punch|slap|choke)) me\b(?! (?:up|back|out|at|"
        r"in (?:chess|a game|the (?:game|race|final|match))|to it|with (?:a|the|an) "
        r"(?:question|text|message|idea|email|call|news)|deeply|so much))",
        r"\b(?:not|don't feel|dont feel|never feel|no longer) safe (?:at|in) (?:my )?(?:own )?(?:home|house)\b",
        r"\b(?:scared|afraid|terrified|frightened|fear|worried) (?:that |of what )?"
        + ABUSER
        + r"(?:'ll| will| is going to| might| would|'s going to|'s gonna|'d| is gonna) (?:kill|hurt|hit|"
        r"beat|rape|do something to) (?:me|us)\b",
        ABUSER + r"(?:'s| is| has)? (?:threatened|threatening|threatens|swore|tried|trying|said (?:he|she|they)"
        r"(?:'d| would| will|'ll)) (?:to )?(?:kill|hurt|beat|rape|stab|shoot) (?:me|us)\b",
        (
            r"\b(?:being|been|am|was|were) (?:sexually |physically |emotionally )?(?:abused|raped|molested|"
            r"sexually assaulted|assaulted)\b"
        ),
        r"\b(?:scared|afraid|terrified|fear(?:ing)?) for my (?:life|safety)\b",
        ABUSER + r"(?:'ll| will| is going to|'s going to|'s gonna) (?:kill|hurt|hit|beat|rape) (?:me|us)\b"
        r"(?! (?:when|if) (?:s?he|they) (?:sees?|finds? out|hears?|learns?|notices?|gets))",
        r"\bforced (?:me|himself on me|herself on me) (?:to have sex|into sex|to do sexual)",
        (
            r"\b(?:keeps?|kept|been|is|was|started|starts|keep on) (?:touching|groping|hitting|beating|choking|"
            r"kicking|slapping|strangling) me\b"
        ),
    ],
}

_OUTPUT_PATTERNS: list[str] = [
    r"\b(?:kill|hurt|cut|harm) your ?sel(?:f|ves)\b",
    r"\bkys\b",
    r"\bend (?:your|ur) (?:own )?life\b",
    r"\byou(?:'d| would| will)? (?:be )?better off dead\b",
    r"\b(?:no ?one|nobody) (?:would|will) (?:even )?miss you\b",
    r"\byou (?:deserve|should|ought) (?:to )?die\b",
    r"\b(?:lethal|fatal|deadly) (?:dose|amount|quantity)\b",
    (
        r"\b(?:how|ways?|best way|easiest way|quickest way|methods?) to (?:kill (?:yourself|someone|him|her|a "
        r"person)|commit suicide|overdose|hang (?:yourself|someone)|make a bomb|poison (?:someone|him|her))\b"
    ),
    (
        r"\b(?:take|swallow) (?:all|a (?:whole )?bottle of|enough) (?:of )?(?:the |your )?(?:sleeping )?"
        r"(?:pills|tablets|meds|painkillers)\b"
    ),
    r"\b(?:you should|go ahead and|just|why don't you|you could) (?:\w+ )?" + KILL_VERB + r" " + PERSON + r"\b",
    r"\b(?:they|he|she) (?:deserves?|deserved) to (?:die|be hurt|suffer)\b",
    r"\bhurt (?:him|her|them) back\b",
]

# Words that, within a few words before a match and in the same clause, deny it: "I'd never hurt myself".
_NEGATION = re.compile(r"\b(?:never|not|don't|dont|do not|won't|wont|wouldn't|wouldnt|would not|no way)\b")
_CLAUSE_BREAK = re.compile(r"[.;!?,]|\bbut\b")
_NEGATION_WINDOW = 3


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(p) for p in patterns]


class SentenceEncoder:
    """The embedded all-MiniLM-L6-v2, mean-pooled and normalised (as it was trained), loaded on first use.

    ``deltas`` (linear layer name to a weight update, e.g. the classifier's merged LoRA factors) are added to
    the pretrained weights at load. Loading takes a second or two and most chats never need it for long, so it
    waits for the first message; a lock keeps two first messages from loading it twice.
    """

    def __init__(self, name: str = "minilm-l6", deltas: dict[str, Any] | None = None):
        self.name = name
        self.deltas = dict(deltas or {})
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch

            from egail.models import load_sentence_encoder

            tokenizer, model = load_sentence_encoder(self.name)
            with torch.no_grad():
                for name, delta in self.deltas.items():
                    weight = model.get_submodule(name).weight
                    if weight.shape != delta.shape:
                        raise ValueError(
                            f"{name}: a weight update of shape {tuple(delta.shape)} for {tuple(weight.shape)}"
                        )
                    weight += delta.to(weight.dtype)
            self._tokenizer, self._model = tokenizer, model

    def tokenize(self, texts: Sequence[str]) -> Any:
        """A padded batch of token ids, cut at the 256 tokens MiniLM reads."""
        self._load()
        return self._tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")

    @staticmethod
    def pool(model: Any, batch: Any) -> Any:
        """Mean over the tokens of ``model``'s last hidden states, normalised: the sentence embedding."""
        import torch

        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """One unit-length embedding per text, as a float64 numpy array (rows follow ``texts``)."""
        import numpy as np
        import torch

        chunks = []
        for begin in range(0, len(texts), batch_size):
            batch = self.tokenize(texts[begin : begin + batch_size])
            with torch.inference_mode():
                chunks.append(self.pool(self._model, batch).double().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 384))


def lora_deltas(tensors: dict[str, Any], scaling: float) -> dict[str, Any]:
    """Each fine-tuned linear layer's weight update, ``scaling * B @ A``, from its stored LoRA factors."""
    return {
        key.removesuffix(".lora_A"): scaling * (tensors[key.removesuffix("A") + "B"].double() @ tensors[key].double())
        for key in tensors
        if key.endswith(".lora_A")
    }


def classifier_input(text: str) -> list[str]:
    """The piece(s) of a message the classifier reads: all of it, or its start and its end when huge."""
    text = " ".join(as_text(text).split())
    if len(text) <= 2 * _PIECE_CHARS:
        return [text]
    return [text[:_PIECE_CHARS], text[-_PIECE_CHARS:]]


def around_match(normalized: str, matched: str, words: int = 12) -> str:
    """The match in its own sentence, at most ``words`` words either side: what the classifier judges a rule
    hit by. The sentence, because "Durkheim's study on suicide" is history wherever it stands; no more, because
    filler around a crisis ("blah blah ... and tonight I'll take all my pills") would dilute it away."""
    start = max(normalized.find(matched), 0)
    before = re.split(r"[.!?\n]", normalized[:start])[-1].split()[-words:]
    after = re.split(r"[.!?\n]", normalized[start + len(matched) :])[0].split()[:words]
    return " ".join([*before, matched, *after])


def context_window(turns: Sequence[str]) -> str:
    """The last user turns as one text for the classifier, each turn cut to its end, oldest first."""
    return "\n".join(" ".join(as_text(t).split())[-_PIECE_CHARS // 2 :] for t in turns if as_text(t).strip())


@dataclass(frozen=True)
class SoftmaxHead:
    """A linear softmax over ``classes`` on sentence embeddings; ``classes[0]`` is the ordinary one (``none``)."""

    classes: tuple[str, ...]
    weight: Any
    bias: Any

    def __post_init__(self) -> None:
        if self.classes[0] != NONE:
            raise ValueError(f"a head's first class must be {NONE!r}, got {self.classes}")
        if self.weight.shape != (len(self.classes), 384) or self.bias.shape != (len(self.classes),):
            raise ValueError(f"head has shape {self.weight.shape}, expected ({len(self.classes)}, 384)")

    @classmethod
    def from_tensors(cls, tensors: dict[str, Any], name: str, classes: tuple[str, ...]) -> SoftmaxHead:
        """The head stored as ``<name>.weight`` and ``<name>.bias``."""
        import numpy as np

        weight, bias = (np.asarray(tensors[f"{name}.{part}"], dtype=np.float64) for part in ("weight", "bias"))
        return cls(classes, weight, bias)

    def probabilities(self, embeddings: Any) -> Any:
        """Per embedding, the probability of each class (rows follow ``embeddings``)."""
        import numpy as np

        logits = embeddings @ self.weight.T + self.bias
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def scores_and_signs(probabilities: Any, classes: Sequence[str]) -> list[tuple[float, str]]:
    """Per row of class probabilities, its score (the probability of anything but ``none``) and likeliest sign."""
    return [(float(1.0 - p[0]), classes[1 + int(p[1:].argmax())]) for p in probabilities]


#: The classifier's two heads, by the prefix of their tensors.
MESSAGE_HEAD, REPLY_HEAD = "head", "reply_head"


@dataclass(frozen=True)
class ClassifierMember:
    """One fine-tuned MiniLM of the classifier's ensemble and its two heads (``MESSAGE_HEAD``, ``REPLY_HEAD``)."""

    encoder: SentenceEncoder
    heads: dict[str, SoftmaxHead]


def member_prefix(index: int) -> str:
    """The prefix of ensemble member ``index``'s tensors: ``member0.head.weight``, ``member1.<layer>.lora_A``."""
    return f"member{index}."


class CrisisClassifier:
    """Two softmax heads on MiniLM fine-tuned for them (users' warning signs, unsafe replies), as an ensemble.

    The message head tells ``none`` from the warning signs in ``SIGNS``; the reply head tells ``none`` from
    ``REPLY_SIGNS`` (a model reply that encourages harm or gives a method). ``members`` copies of MiniLM are
    fine-tuned from different seeds, each with its own heads, and a text's class probabilities are the mean of
    theirs: each member is wrong, confidently, on different indirect messages, and the mean is right more often
    than either (one forward pass per member and message). Written by ``python -m egail.safety_train``:
    settings, thresholds and training record in a JSON file, tensors in safetensors (no pickles): per member
    (``member<i>.``) the heads (``head.*``, ``reply_head.*``) and low-rank (LoRA) updates of the encoder's
    linear layers (``<layer>.lora_A``, ``<layer>.lora_B``), merged into the pretrained MiniLM when it loads.
    A rule hit on a message scoring under ``rule_veto`` is dropped (the classifier is sure it is ordinary).
    """

    def __init__(self, weights: dict[str, Any], tensors: dict[str, Any]):
        self.classes = tuple(weights["classes"])
        self.reply_classes = tuple(weights["reply_classes"])
        if self.classes[1:] != tuple(SIGNS) or self.reply_classes[1:] != REPLY_SIGNS:
            raise ValueError(f"classifier classes {self.classes}, {self.reply_classes} are not egail's")
        self.head_classes = {MESSAGE_HEAD: self.classes, REPLY_HEAD: self.reply_classes}
        self.threshold = float(weights["threshold"])
        self.reply_threshold = float(weights["reply_threshold"])
        self.rule_veto = float(weights["rule_veto"])
        members = weights.get("members")
        if not isinstance(members, int) or members < 1:
            raise ValueError(f"the classifier's weights must name its ensemble members (1 or more), got {members!r}")
        missing = [i for i in range(members) if f"{member_prefix(i)}{MESSAGE_HEAD}.weight" not in tensors]
        if missing:
            raise ValueError(f"the classifier's tensors lack ensemble member(s) {missing} of the {members} named")
        self.members = []
        for index in range(members):
            prefix = member_prefix(index)
            own = {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}
            deltas = lora_deltas(own, float(weights["lora"]["scaling"]))
            encoder = SentenceEncoder(weights.get("encoder", "minilm-l6"), deltas)
            heads = {name: SoftmaxHead.from_tensors(own, name, classes) for name, classes in self.head_classes.items()}
            self.members.append(ClassifierMember(encoder, heads))

    @classmethod
    def load(cls) -> CrisisClassifier:
        """The classifier shipped with egail."""
        from safetensors.torch import load

        folder = resources.files("egail") / "safety_data"
        weights = json.loads((folder / CLASSIFIER_WEIGHTS).read_text(encoding="utf-8"))
        return cls(weights, load((folder / CLASSIFIER_TENSORS).read_bytes()))

    def probabilities(self, head: str, texts: Sequence[str]) -> Any:
        """Per text, the class probabilities of ``head`` (``MESSAGE_HEAD`` or ``REPLY_HEAD``), the members' mean."""
        return sum(m.heads[head].probabilities(m.encoder.encode(texts)) for m in self.members) / len(self.members)

    def score_groups(self, groups: Sequence[Sequence[str]]) -> list[tuple[float, str]]:
        """Per group of pieces (one text), its message score and closest sign, the max over its pieces.

        All pieces go through each member's encoder in one batch: one forward pass per member and message,
        context included.
        """
        pieces = [piece for group in groups for piece in group]
        scored = scores_and_signs(self.probabilities(MESSAGE_HEAD, pieces), self.classes)
        results, row = [], 0
        for group in groups:
            results.append(max(scored[row : row + len(group)]))
            row += len(group)
        return results

    def score_reply(self, text: str) -> tuple[float, str]:
        """A model reply's score on the reply head and its closest kind of harm, the max over its pieces."""
        return max(scores_and_signs(self.probabilities(REPLY_HEAD, classifier_input(text)), self.reply_classes))


class CrisisGuard:
    """Flags messages about suicide, self-harm, harming others or abuse, and screens the model's replies.

    ``check`` runs on the user's message and the user's previous turns: a flagged message is answered with
    ``reply`` and never reaches the model. ``screen_output`` runs on the model's reply: a flagged reply is
    replaced by ``output_reply``. ``classifier=False`` runs the rules alone (as egail did before it had a
    classifier); a classifier that cannot load leaves the rules running, logged and marked ``degraded``.
    """

    def __init__(
        self,
        reply: str = CRISIS_REPLY,
        output_reply: str = UNSAFE_OUTPUT_REPLY,
        classifier: CrisisClassifier | bool = True,
        context_turns: int = CONTEXT_TURNS,
    ):
        self.reply = reply
        self.output_reply = output_reply
        self.context_turns = max(1, context_turns)
        self._patterns = {category: _compile(p) for category, p in _RAW_PATTERNS.items()}
        self._output_patterns = _compile(_OUTPUT_PATTERNS)
        self._classifier: CrisisClassifier | None = classifier if isinstance(classifier, CrisisClassifier) else None
        self._use_classifier = classifier is not False
        self._classifier_failed = False
        self._loading = threading.Lock()  # first messages that arrive together load the classifier once

    @property
    def classifier(self) -> CrisisClassifier | None:
        """The classifier, loaded on first use; None when switched off or when it could not load."""
        if self._classifier is None and self._use_classifier and not self._classifier_failed:
            with self._loading:
                if self._classifier is None and not self._classifier_failed:
                    try:
                        self._classifier = CrisisClassifier.load()
                    except Exception:  # any failure to load (files, memory, versions): the rules run on, logged
                        logger.exception("crisis classifier unavailable: the guard runs on its rules alone")
                        self._classifier_failed = True
        return self._classifier

    @staticmethod
    def _negated(text: str, start: int) -> bool:
        before = text[:start]
        clause = _CLAUSE_BREAK.split(before)[-1]
        window = " ".join(clause.split()[-_NEGATION_WINDOW:])
        return bool(_NEGATION.search(window))

    def _first_match(self, text: str, patterns: list[re.Pattern[str]]) -> str | None:
        for pattern in patterns:
            for match in pattern.finditer(text):
                if not self._negated(text, match.start()):
                    return match.group(0)
        return None

    def check_rules(self, text: str) -> GuardResult:
        """The rules alone on one message."""
        normalized = normalize(as_text(text))
        for category in CATEGORIES:
            matched = self._first_match(normalized, self._patterns[category])
            if matched is not None:
                return GuardResult(True, category, matched, RULE, reason=f"rule matched {matched!r}")
        return GuardResult(False)

    def check(self, text: Any, context: Sequence[Any] = ()) -> GuardResult:
        """Whether a user's message needs the crisis reply instead of the model.

        ``context`` is the user's own previous turns, oldest first (not the bot's replies); the last
        ``context_turns - 1`` of them are read with the message. Never raises: a failure is flagged.
        """
        turns = [context] if isinstance(context, (str, bytes)) else list(context or ())
        try:
            return self._check(as_text(text), [as_text(t) for t in turns])
        except Exception as error:  # fail safe: a guard that cannot decide says "flagged", and the chat goes on
            logger.exception("crisis guard failed; treating the message as flagged")
            return GuardResult(True, source=ERROR, reason=f"guard failed ({type(error).__name__}): fail safe")

    def _check(self, text: str, context: list[str]) -> GuardResult:
        ruled = self.check_rules(text)
        classifier = self.classifier
        degraded = self._use_classifier and classifier is None
        if not text.strip():
            return GuardResult(False, degraded=degraded, reason="empty message")
        if classifier is None:
            return replace(ruled, degraded=degraded)
        previous = [t for t in context if t.strip()][-(self.context_turns - 1) :] if self.context_turns > 1 else []
        groups = [classifier_input(text)]
        if previous:
            groups.append([context_window([*previous, text])])
        if ruled.flagged:
            groups.append([around_match(normalize(text), ruled.matched or "")])
        scored = classifier.score_groups(groups)
        score, sign = scored[0]
        threshold = classifier.threshold
        details = {"sign": sign, "score": round(score, 4), "threshold": threshold}
        if ruled.flagged:
            # Keyword rules fire on history lessons, novels and jokes ("Durkheim's study on suicide"); a rule hit
            # is dropped only when the classifier is confident that the words around the match are ordinary
            # (the words around it, so that filler in a long message cannot dilute a crisis away).
            around = scored[-1][0]
            if around >= classifier.rule_veto:
                return replace(ruled, **details)
            reason = f"{ruled.reason}, vetoed: classifier score {around:.3f} < rule veto {classifier.rule_veto:.3f}"
            return GuardResult(False, matched=ruled.matched, reason=reason, **details)
        if score >= threshold:
            reason = f"classifier: {sign}, score {score:.3f} >= threshold {threshold:.3f}"
            return GuardResult(True, SIGNS[sign], source=CLASSIFIER, reason=reason, **details)
        if previous:
            # The turns read together: a sign spread over them, or one said a turn ago that the latest message
            # goes on from ("at least it works"). While a crisis is within the last turns the answer stays the
            # crisis reply, not a small model's: the labelled conversations need it there as much as at first.
            window_score, window_sign = scored[1]
            if window_score >= threshold:
                reason = (
                    f"context: the last {len(previous) + 1} user turns read as {window_sign}, score "
                    f"{window_score:.3f} >= threshold {threshold:.3f} (the message alone: {score:.3f})"
                )
                window = {"sign": window_sign, "score": round(window_score, 4), "threshold": threshold}
                return GuardResult(True, SIGNS[window_sign], source=CONTEXT, reason=reason, **window)
        return GuardResult(False, reason=f"classifier: score {score:.3f} < threshold {threshold:.3f}", **details)

    def screen_output(self, text: Any) -> GuardResult:
        """Whether a model reply encourages harm or gives a method: the output rules, then the reply head.

        The reply is not run through the message check: a good reply to someone in crisis asks about suicide
        and names the means ("can you put the pills somewhere else tonight?"), and must reach them.
        """
        try:
            return self._screen_output(as_text(text))
        except Exception as error:  # fail safe, as in check
            logger.exception("output screen failed; treating the reply as flagged")
            return GuardResult(True, source=ERROR, reason=f"output screen failed ({type(error).__name__}): fail safe")

    def _screen_output(self, text: str) -> GuardResult:
        matched = self._first_match(normalize(text), self._output_patterns)
        if matched is not None:
            return GuardResult(True, UNSAFE_OUTPUT, matched, RULE, reason=f"output rule matched {matched!r}")
        classifier = self.classifier
        if classifier is None or not text.strip():
            return GuardResult(False, degraded=self._use_classifier and classifier is None)
        score, sign = classifier.score_reply(text)
        threshold = classifier.reply_threshold
        details = {"sign": sign, "score": round(score, 4), "threshold": threshold}
        if score >= threshold:
            reason = f"reply classifier: {sign}, score {score:.3f} >= threshold {threshold:.3f}"
            return GuardResult(True, UNSAFE_OUTPUT, source=CLASSIFIER, reason=reason, **details)
        return GuardResult(False, reason=f"reply classifier: score {score:.3f} < threshold {threshold:.3f}", **details)


def _read_jsonl(name: str, required: tuple[str, ...]) -> list[dict[str, Any]]:
    path = resources.files("egail") / "safety_data" / name
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number}, column {error.colno}: {error.msg}") from error
        for field in required:
            if field not in row:
                raise ValueError(f"{path}: line {number}: missing field '{field}'")
        if row["label"] not in (0, 1):
            raise ValueError(f"{path}: line {number}: field 'label' must be 0 or 1, got {row['label']!r}")
        rows.append(row)
    return rows


def load_labelled_set() -> list[dict[str, Any]]:
    """The first, rules-era labelled messages: ``{text, label, category, note, split}`` per row.

    Written by another hand than the guard's current set and never trained on, so they are a second,
    independent test of the whole guard.
    """
    return _read_jsonl("crisis_messages.jsonl", ("text", "label", "category", "note"))


def load_guard_messages() -> list[dict[str, Any]]:
    """The guard's labelled set: ``{text, label, category, split}`` and, for multi-turn cases, ``context``.

    ``category`` is a warning sign of ``SIGNS`` for label 1, the kind of hard negative for label 0.
    """
    return _read_jsonl("guard_messages.jsonl", ("text", "label", "category", "split"))


def load_guard_replies() -> list[dict[str, Any]]:
    """Labelled model replies for the output screen: ``{text, label, category, split}``."""
    return _read_jsonl("guard_replies.jsonl", ("text", "label", "category", "split"))
