"""Command-line error handling shared by the recipes: a user mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from egail.models import ModelNotFoundError

#: Errors that egail and its recipes raise for bad configuration, paths, data or models.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, ModelNotFoundError)


def run_cli(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """Run ``main``; on a user error print ``error: <message>`` and exit 2 (``EGAIL_DEBUG=1`` re-raises)."""
    try:
        return main(argv)
    except USER_ERRORS as error:
        if os.environ.get("EGAIL_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
