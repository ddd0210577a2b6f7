"""The C core's error codes and messages, read from natmods/common/mpyml_common.h's X-macro lists
(in file order, which is the order of the enum), so the tests follow the header."""

import re
from pathlib import Path

HEADER = Path(__file__).resolve().parents[1] / "natmods" / "common" / "mpyml_common.h"


def error_table() -> dict[str, tuple[int, str]]:
    """Error name -> (code, message)."""
    text = HEADER.read_text()
    body = text[text.index("// Error lists begin"):text.index("// Error lists end")]
    entries = re.findall(r'X\((\w+), "((?:[^"\\]|\\.)*)"\)', body)
    assert entries and entries[0][0] == "OK"
    return {name: (code, message) for code, (name, message) in enumerate(entries)}


def error_codes() -> dict[str, int]:
    return {name: code for name, (code, _) in error_table().items()}
