"""Expert trajectories for GAIL from dialogue corpora: readers, the paper's staggering rule, splits by
conversation, the dataset card, and the dataset embedded in the package.

``python -m egail.data build --source ed:PATH --source dd:PATH --out DIR`` builds and publishes one.
"""

from egail.data.build import (
    EMBEDDED_DIR,
    FEATURES,
    SOURCE_KINDS,
    BuildResult,
    SourceReport,
    build_dataset,
    load_trajectories,
)
from egail.data.conversation import (
    DD_EMOTIONS,
    ED_EMOTIONS,
    Conversation,
    ReadResult,
    Skip,
    normalise_dd,
    normalise_ed,
)
from egail.data.readers import (
    read_chat_jsonl,
    read_dailydialog,
    read_embedded_conversations,
    read_empatheticdialogues,
    read_oneliners,
)
from egail.data.splits import DEFAULT_SPLITS, dedupe, split_conversations
from egail.data.stagger import STAGGERING_RULE, stagger
from egail.schema import COLUMNS

__all__ = [
    "COLUMNS",
    "DD_EMOTIONS",
    "DEFAULT_SPLITS",
    "ED_EMOTIONS",
    "EMBEDDED_DIR",
    "FEATURES",
    "SOURCE_KINDS",
    "STAGGERING_RULE",
    "BuildResult",
    "Conversation",
    "ReadResult",
    "Skip",
    "SourceReport",
    "build_dataset",
    "dedupe",
    "load_trajectories",
    "normalise_dd",
    "normalise_ed",
    "read_chat_jsonl",
    "read_dailydialog",
    "read_embedded_conversations",
    "read_empatheticdialogues",
    "read_oneliners",
    "split_conversations",
    "stagger",
]
