"""Every error code a natmod can raise has its message in that module.

Each glue file names the error families whose messages it carries (MPYML_ERROR_MESSAGES, see
natmods/common/mpyml_common.h); a code from another family would reach the user as
"error without a message in this module".
"""

import re
from pathlib import Path

import pytest

from mpyml.build import NATMODS

NATMODS_DIR = Path(__file__).resolve().parents[1] / "natmods"
COMMON = NATMODS_DIR / "common"


def family_members() -> dict[str, set[str]]:
    text = (COMMON / "mpyml_common.h").read_text()
    families = {}
    for name, body in re.findall(r"#define MPYML_ERRORS_(\w+)\(X\) \\\n((?:    X\(.*\n)+)", text):
        families[name] = set(re.findall(r"X\((\w+),", body))
    # A family made of others, on one line: #define MPYML_ERRORS_COMMON(X) MPYML_ERRORS_BASE(X) ...
    for name, parts in re.findall(r"#define MPYML_ERRORS_(\w+)\(X\) ((?:MPYML_ERRORS_\w+\(X\) ?)+)\n", text):
        families[name] = set().union(*(families[part] for part in re.findall(r"MPYML_ERRORS_(\w+)\(X\)", parts)))
    return families


def codes_used(path: Path, seen=None) -> set[str]:
    """MPYML_ERR_ codes named in a file and in the project headers it includes."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    text = path.read_text()
    codes = set(re.findall(r"MPYML_ERR_(\w+)", text)) - {"COUNT", "OK"}
    for header in re.findall(r'#include "(mpyml_\w+\.h)"', text):
        codes |= codes_used(COMMON / header, seen)
    return codes


@pytest.mark.parametrize("module", NATMODS)
def test_module_carries_the_messages_it_raises(module):
    families = family_members()
    assert families and families["COMMON"] == families["BASE"] | families["MODEL"] | families["HEX"]
    glue = NATMODS_DIR / module / (module + ".c")
    selected = re.search(r"#define MPYML_ERROR_MESSAGES\(X\) (.*)", glue.read_text()).group(1)
    carried = set().union(*(families[name] for name in re.findall(r"MPYML_ERRORS_(\w+)\(X\)", selected)))
    used = codes_used(glue)
    assert used, module
    assert used <= carried, "%s raises codes without messages: %s" % (module, sorted(used - carried))
