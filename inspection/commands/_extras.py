"""The optional parts of the package and what each needs: ``pip install 'inspection[serve]'``, ``[dashboard]``.

A scoring station installs the base package only. A command that needs an extra names it in its module
(``EXTRA = "serve"``); the CLI checks for the extra's packages before the command runs and, when one is missing,
prints the install command instead of an ImportError from deep inside. The package lists here match the extras
in ``pyproject.toml`` (a test keeps them in step).
"""

from __future__ import annotations

from importlib import metadata

EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "python-multipart", "prometheus-client", "httpx"),
    "dashboard": ("streamlit", "altair", "pandas", "streamlit-authenticator", "bcrypt"),
}


def missing_packages(extra: str) -> list[str]:
    """The packages of ``extra`` that are not installed."""
    missing = []
    for name in EXTRAS[extra]:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def missing_extra_message(command: str, extra: str) -> str | None:
    """Why ``inspection COMMAND`` cannot run without ``extra`` and how to install it, or None when it is there."""
    missing = missing_packages(extra)
    if not missing:
        return None
    return (
        f"inspection {command} needs the '{extra}' extra, which is not installed (missing: {', '.join(missing)}); "
        f"install it with: pip install 'inspection[{extra}]'"
    )
