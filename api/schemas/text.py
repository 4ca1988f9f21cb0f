"""Text a person types, with the server's rules written into the schema: the services refuse
control characters and blank values, so the schema says so too (``pattern``), and a client
generated from it, or a form built from it, checks the same way.

The patterns are a little stricter than the services on one point: they also refuse the C1
control characters (U+0080 to U+009F), which Python counts as whitespace when it trims
(U+0085) but JSON Schema regular expressions do not.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_BUT_LINE_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"

#: One line, not blank, no control characters (a name, a title, a code).
LINE_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
#: Free text: line breaks and tabs allowed, other control characters not; may be empty.
TEXT_PATTERN = rf"^[^{_CONTROL_BUT_LINE_BREAKS}]*$"


def line(max_length: int, description: str | None = None) -> Any:
    """A ``Field`` for one non-blank line of at most ``max_length`` characters."""
    return Field(min_length=1, max_length=max_length, pattern=LINE_PATTERN, description=description)
