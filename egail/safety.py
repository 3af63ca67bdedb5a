"""A crisis guard in front of the chatbot.

A small language model must not be the one to answer someone who says they want to die, or that they
are in danger: such messages get a fixed, supportive reply that points to people who can help, and the
model is not called. The model's own replies are screened too, because a sampled reply can encourage
harm or describe a method even when the user's message was harmless.

The guard is rule-based on purpose: it is transparent, fast, works offline, and its mistakes can be read
off the patterns. Rules trade recall against everyday idioms ("this traffic is killing me", "I'm dying to
see that movie"), so the patterns carry explicit exceptions for the common ones and a narrow negation
check ("I'd never hurt myself"). It leans towards flagging: a false alarm costs one unneeded pointer to a
helpline, a miss costs far more. Its precision and recall on the labelled set in
``egail/safety_data/crisis_messages.jsonl`` are printed by ``tests/test_safety.py``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

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


@dataclass(frozen=True)
class GuardResult:
    """Whether a text was flagged, under which category, and the (normalised) text that matched."""

    flagged: bool
    category: str | None = None
    matched: str | None = None


def normalize(text: str) -> str:
    """Lower-case, straight apostrophes, single spaces: what the patterns are written against."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return re.sub(r"\s+", " ", text).strip()


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
        r"\b(?:(?:don't|do not|dont|can't|cannot|cant) (?:see|find|have|think of) )?(?:no|any|a|the) reason "
        r"(?:left )?to (?:live|go on|keep going|be alive|stay alive)\b"
        r"(?! (?:in|at|near|with|here|there|close)\b)",
        r"\bnothing (?:left )?to live for\b",
        r"\b(?:better|happier) (?:off )?without me\b",
        r"\bbetter off dead\b",
        r"\b(?:better off|happier|better) (?:if i (?:was|were|wasn't|weren't) (?:here|alive|around|dead|gone)|"
        r"if i died)\b",
        r"\bwish (?:that )?i (?:was|were|could be) dead\b",
        r"\bwish (?:that )?i (?:had|'d)? ?never (?:been|was) born\b",
        r"\b(?:want|wants|wanna|wanted|ready|deserve|deserves|deserved) (?:to )?die\b"
        r"(?! (?:my|her|his|their|your|the) hair\b)(?! (?:of|from) (?:embarrassment|laughter|boredom|shame|"
        r"cuteness))",
        r"\b(?:don't|do not|dont|doesn't|does not|no longer|never) (?:want to|wants to|wanna|wish to) "
        r"(?:be alive|live|exist|wake up)\b"
        r"(?! (?:in|at|near|with|here|there|like)\b)",
        r"\b(?:can'?t|cannot|can not|don't think i can|unable to) (?:go on|keep|continue|carry on) (?:living|"
        r"being alive|with (?:my )?life)\b",
        r"\b(?:what's|what is|whats|there's no|there is no|no) (?:the )?point (?:of|in) (?:living|life|being alive|"
        r"going on|staying alive|waking up)\b",
        r"\b(?:want|wanna|wish|hope|pray|praying|hoping)\b[^.!?]{0,30}\bnever (?:to )?wake up\b",
        r"\b(?:goodbye|suicide|farewell) (?:letters?|notes?)\b",
        r"\b(?:tired|sick) of (?:being alive|living|life|existing)\b",
        r"\b(?:want|wanna|wish i could|going|gonna) (?:to )?disappear (?:forever|for good|permanently)\b",
        r"\b(?:think|thinking|thought|thoughts) (?:about|of) (?:dying|death|being dead|not being here|not existing)\b",
        r"\bno way out\b[^.!?]{0,30}\b(?:death|dying|die|suicide)\b",
        r"\bdeath is the only\b",
        r"\bgiv(?:e|ing) away (?:all )?my (?:things|stuff|belongings|possessions)\b",
        r"\b(?:my )?last (?:day|night|week|month) (?:on earth|alive|of my life)\b",
        r"\b(?:cut|cutting|burn|burning|scratch|scratching|carve|carving) (?:into )?my (?:skin|arms?|wrists?|thighs?|"
        r"legs?|stomach)\b(?! (?:on|shaving|by accident|accidentally|while)\b)",
        r"\bnoose\b",
        r"\b(?:a|the|my) rope\b[^.!?]{0,60}\b(?:using it|use it|hang|neck)\b",
        r"\b(?:on|at|off) the (?:edge|ledge) of (?:the|a|my) (?:roof|bridge|cliff|balcony|building|platform|tower)\b",
        r"\b(?:until|till|'til) (?:it|they|i|my \w+) (?:bleeds?|bled|bruises?|bruised)\b",
        r"\bhow many (?:\w+ ){0,2}(?:pills|tablets|painkillers|paracetamol|tylenol|ibuprofen|aspirin)\b"
        r"(?: \w+){0,3} (?:(?:would|does|will) it take|it (?:would|will|'d) take)\b",
        # Self-harm said with intent is flagged as is; a bare "cut myself" may be an accident.
        INTENT + r" (?:to )?(?:hurt|harm|cut|burn|starve|punish)(?:ing|ting)? " + SELF + r"\b",
        r"\b(?:hurt|hurting|harm|harming|cut|cutting|burn|burning|burned|burnt|starve|starving) "
        + SELF
        + r"\b(?! (?:shaving|while|when|on|by accident|accidentally|playing|at the gym|at work|in the kitchen|"
        r"(?:a|another) (?:slice|piece|bit|cup|break)|some|(?!cutting|burning)\w+ing\b))",
        r"\bself[- ]?harm(?:ing|ed)?\b",
        r"\boverdos(?:e|ed|ing)\b",
        r"\b(?:take|taking|took|swallow|swallowing|swallowed) (?:all|every one|a (?:whole )?(?:bottle|handful|"
        r"box|bunch|packet) of|enough) (?:of )?(?:my |the |those |these )?(?:sleeping )?(?:pills|tablets|meds|"
        r"medication|painkillers)\b",
        r"\bjump(?:ing)? (?:off|from|in front of) (?:a|the|this|that|my) (?:bridge|building|roof|cliff|balcony|"
        r"train|window|tower|car|bus|ledge)\b",
        r"\b(?:slit|slash|slitting|slashing|cut|cutting) (?:my|both) wrists?\b",
        r"\b(?:no ?one|nobody) would (?:even )?(?:notice|care|miss me) if i (?:died|was gone|were gone|"
        r"disappeared|wasn't (?:here|around)|weren't (?:here|around)|killed " + SELF + r")",
        r"\b(?:kill|killing|hang|hanging) (?:him|her|them|your)sel(?:f|ves)\b",
        r"\b(?:going|gonna|wants?|wanted|trying|tried|threatening|threatened|talking about|talks about|"
        r"thinking about|plans?|planning) (?:to )?(?:hurt|harm|cut)(?:ing|ting)? (?:him|her|them|your)"
        r"sel(?:f|ves)\b",
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
        r"\b(?:being|been|am|was|were) (?:sexually |physically |emotionally )?(?:abused|raped|molested|"
        r"sexually assaulted|assaulted)\b",
        r"\b(?:scared|afraid|terrified|fear(?:ing)?) for my (?:life|safety)\b",
        ABUSER + r"(?:'ll| will| is going to|'s going to|'s gonna) (?:kill|hurt|hit|beat|rape) (?:me|us)\b"
        r"(?! (?:when|if) (?:s?he|they) (?:sees?|finds? out|hears?|learns?|notices?|gets))",
        r"\bforced (?:me|himself on me|herself on me) (?:to have sex|into sex|to do sexual)",
        r"\b(?:keeps?|kept|been|is|was|started|starts|keep on) (?:touching|groping|hitting|beating|choking|"
        r"kicking|slapping|strangling) me\b",
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
    r"\b(?:how|ways?|best way|easiest way|quickest way|methods?) to (?:kill (?:yourself|someone|him|her|a "
    r"person)|commit suicide|overdose|hang (?:yourself|someone)|make a bomb|poison (?:someone|him|her))\b",
    r"\b(?:take|swallow) (?:all|a (?:whole )?bottle of|enough) (?:of )?(?:the |your )?(?:sleeping )?"
    r"(?:pills|tablets|meds|painkillers)\b",
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


class CrisisGuard:
    """Flags messages about suicide, self-harm, harming others or abuse, and screens the model's replies.

    ``check`` runs on the user's message: a flagged message is answered with ``reply`` and never reaches
    the model. ``screen_output`` runs on the model's reply: a flagged reply is replaced by ``output_reply``.
    """

    def __init__(self, reply: str = CRISIS_REPLY, output_reply: str = UNSAFE_OUTPUT_REPLY):
        self.reply = reply
        self.output_reply = output_reply
        self._patterns = {category: _compile(p) for category, p in _RAW_PATTERNS.items()}
        self._output_patterns = _compile(_OUTPUT_PATTERNS)

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

    def check(self, text: str) -> GuardResult:
        """Whether a user's message needs the crisis reply instead of the model."""
        normalized = normalize(text)
        for category in CATEGORIES:
            matched = self._first_match(normalized, self._patterns[category])
            if matched is not None:
                return GuardResult(True, category, matched)
        return GuardResult(False)

    def screen_output(self, text: str) -> GuardResult:
        """Whether a model reply encourages harm, gives a method, or itself reads as a crisis message."""
        normalized = normalize(text)
        matched = self._first_match(normalized, self._output_patterns)
        if matched is not None:
            return GuardResult(True, UNSAFE_OUTPUT, matched)
        return self.check(text)


def load_labelled_set() -> list[dict[str, Any]]:
    """The labelled messages shipped with egail: ``{text, label, category, note, split}`` per row."""
    path = resources.files("egail") / "safety_data" / "crisis_messages.jsonl"
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number}, column {error.colno}: {error.msg}") from error
        for field in ("text", "label", "category", "note"):
            if field not in row:
                raise ValueError(f"{path}: line {number}: missing field '{field}'")
        if row["label"] not in (0, 1):
            raise ValueError(f"{path}: line {number}: field 'label' must be 0 or 1, got {row['label']!r}")
        rows.append(row)
    return rows
