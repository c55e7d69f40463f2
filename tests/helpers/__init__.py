"""Helpers shared by the test packages (``tests/conftest.py`` puts ``tests/`` on the import path)."""
