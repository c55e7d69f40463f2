"""Record text made safe for Streamlit's Markdown.

Station ids, part ids, rejection reasons and messages, file names and error texts come from callers of the
service or from files dropped into a watch folder. Streamlit renders captions, alerts, metric labels and
values as Markdown, so a planted ``[x](http://evil)`` would become a link and ``![x](http://evil/a.png)`` a
remote image fetched by every engineer's browser. Every such text goes through :func:`escape_markdown`
before it reaches one of those calls; plain-text places (tables, select-box options, chart data) take it as is.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation character, and every Markdown construct
# (links, images, emphasis, code, HTML, headings, tables, $math$) starts with one.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Some constructs are found in the text after escapes are resolved: GFM's bare autolinks (``http://``,
# ``www.``, ``name@host``) and Streamlit's ``:red[...]``, ``:material/icon:`` and emoji ``:name:``. An
# invisible WORD JOINER after every ``:`` and ``@`` and inside ``www.`` keeps them from matching.
WORD_JOINER = "\u2060"
_AUTOLINK_PARTS = re.compile(r"([:@]|(?i:www)(?=\.))")


def escape_markdown(value: object) -> str:
    """``value`` as text that Markdown shows literally, on one line.

    Every ASCII punctuation character gets a backslash and an invisible word joiner follows each ``:``
    and ``@`` (and splits ``www.``), so the text looks exactly as stored but can form no link, autolink,
    image, emphasis, heading, icon or directive; line breaks and tabs become spaces, so a message cannot
    start a new Markdown block. ``None`` becomes an empty string.
    """
    if value is None:
        return ""
    one_line = " ".join(str(value).split())
    joined = _AUTOLINK_PARTS.sub(lambda m: m.group(1) + WORD_JOINER, one_line)
    return _PUNCTUATION.sub(r"\\\1", joined)


def shown(value: object, default: str = "n/a") -> str:
    """``value`` escaped for Markdown, or ``default`` (trusted, not escaped) when it is empty or None."""
    if value is None or str(value) == "":
        return default
    return escape_markdown(value)
