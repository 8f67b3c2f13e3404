"""Names that become folder names: identities (a person's faceset), facesets and models. One rule, one check.

A name is used as a single path component inside the workspace (facesets/<name>/, models/<name>/), so it must
not be able to leave that folder ('../../x', '/abs', '..'), land in the workspace root ('.', ''), hide ('.x'),
read as a flag ('-x') or carry characters a file system or a terminal treats specially (separators, spaces,
control characters). Letters of every script are welcome: Zoë, 李雷, Ана are names.

`check_name` is called where a name enters (the API) and again where a path is built from one (the faceset
and model folders), so a bad name from an older catalog cannot reach the file system either.
"""
from __future__ import annotations

import unicodedata

from facewright.errors import OptionError

MAX_NAME_CHARS = 64  # a folder name that fits any file system, and a line of a listing
NAME_PUNCTUATION = "-_."
NAME_RULE = (f"1 to {MAX_NAME_CHARS} letters (any script), digits, '-', '_' and '.', not starting with '.' or '-', "
             "and no spaces, slashes or other characters")
NAME_FIX = f"a name is {NAME_RULE}; e.g. anna-2_b.v1, Zoë or 李雷"
_SHOWN = 40  # characters of a bad name quoted in the message


def check_name(value: object, what: str, *, fix: str | None = None) -> str:
    """`value` if it is a usable name; else an OptionError saying which rule it breaks and how to fix it.

    `what` is how the user gave it (e.g. "--identity", "model name"); the message starts with it. `fix`
    replaces the default fix (the rule) where a value may also be something else, such as a path.
    """
    if not isinstance(value, str):
        raise OptionError(f"{what}: a name must be text, got {type(value).__name__}", fix=fix or NAME_FIX)
    problem = name_problem(value)
    if problem is not None:
        shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
        raise OptionError(f"{what} {shown!r} is not a usable name: {problem}", fix=fix or NAME_FIX)
    return value


def name_problem(value: str) -> str | None:
    """Why `value` is not a usable name, in words; None if it is one."""
    if not value:
        return "it is empty"
    if len(value) > MAX_NAME_CHARS:
        return f"it has {len(value)} characters, more than {MAX_NAME_CHARS}"
    for index, char in enumerate(value):
        if not _allowed(char, first=index == 0):
            return f"it holds {_describe(char)}"
    if value in (".", ".."):
        return f"{value!r} is a folder's own entry, not a name"
    if value[0] == ".":
        return "it starts with '.' (a hidden folder)"
    if value[0] == "-":
        return "it starts with '-' (it would read as a flag)"
    return None


def printable(stem: str) -> str:
    """A file name made from a user's file name (an output's default, NAME-swapped.mp4) with its control and
    invisible characters (a newline, an escape) as '_': the name appears in listings, logs and terminals."""
    return "".join("_" if unicodedata.category(char)[0] == "C" else char for char in stem)


def _allowed(char: str, *, first: bool) -> bool:
    category = unicodedata.category(char)
    if category[0] == "L" or category == "Nd" or char in NAME_PUNCTUATION:
        return True
    # combining marks write many scripts' names (Devanagari vowel signs, a decomposed "ë"), never alone
    return category[0] == "M" and not first


def _describe(char: str) -> str:
    if char in "/\\":
        return f"{char!r}, a path separator"
    if unicodedata.category(char)[0] == "C":
        return f"a control or invisible character (U+{ord(char):04X})"
    if char.isspace():
        return f"a space (U+{ord(char):04X})"
    return f"{char!r} (U+{ord(char):04X})"
