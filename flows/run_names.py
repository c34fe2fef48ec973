"""Whether a flow run's name is one Prefect made up (then the flow names the run itself) or one a person typed.

Prefect's made-up names: its server's and client's (coolname's two-word slugs, "adjective-animal", drawn
from coolname's own word lists, so a typed "web-rerun" is not taken for one), the V2 UI custom-run form's
("Sleek-Zebu", faker's product adjective and an animal) and the V1 UI form's ("gamma42-andromedae-nebula").
"""

from __future__ import annotations

import functools
import re

_V2_UI = re.compile(
    r"(Awesome|Rustic|Small|Gorgeous|Fantastic|Sleek|Intelligent|Unbranded|Refined|Licensed|Generic|Practical"
    r"|Ergonomic|Handcrafted|Tasty|Handmade|Incredible)-[^-]{1,6}"
)
_V1_UI = re.compile(
    r"(alpha|beta|gamma|delta|epsilon|zeta|eta|theta|iota|kappa|lambda|mu|nu|xi|omicron|pi|rho|sigma|tau"
    r"|upsilon|phi|chi|psi|omega)\d*-[a-z-]+"
)


@functools.cache
def _coolname_words() -> tuple[frozenset[str], frozenset[str]]:
    """The first and second words of coolname's two-word slugs (its "2" configuration: adjective x animal)."""
    from coolname.data import config  # Prefect's dependency, the generator of its names

    def words(name: str) -> frozenset[str]:
        entry = config[name]
        found = set(entry.get("words") or ())
        found |= {"-".join(p) if isinstance(p, (list, tuple)) else str(p) for p in entry.get("phrases") or ()}
        for child in entry.get("lists") or ():
            found |= words(child)
        return frozenset(found)

    (cartesian,) = config["2"]["lists"]
    first, second = config[cartesian]["lists"]
    return words(first), words(second)


def made_up(name: str) -> bool:
    if _V2_UI.fullmatch(name) or _V1_UI.fullmatch(name):
        return True
    first, sep, second = name.partition("-")
    adjectives, animals = _coolname_words()
    return bool(sep) and first in adjectives and second in animals
