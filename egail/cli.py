"""Command-line error handling shared by the recipes: a user mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from egail.models import ModelNotFoundError

#: Errors that egail and its recipes raise for bad configuration, paths, data or models.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, ModelNotFoundError)


def _fail(error: Exception, code: int) -> None:
    if os.environ.get("EGAIL_DEBUG"):
        raise error
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code) from None


def run_cli(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """Run ``main``: a user error prints ``error: <message>`` and exits 2; training stopped by repeated
    non-finite losses prints its message and exits 1. ``EGAIL_DEBUG=1`` re-raises with the traceback."""
    from egail.checkpointing import NonFiniteTrainingError

    try:
        return main(argv)
    except USER_ERRORS as error:
        _fail(error, 2)
    except NonFiniteTrainingError as error:
        _fail(error, 1)
