"""The recipes' fixtures (``tiny_overrides``) for the reliability tests."""

from tests.recipes.conftest import tiny_overrides  # noqa: F401 - fixture
