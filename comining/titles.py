"""Names of methods and noise settings as the paper's tables print them.

Shared by the table of a grid (comining.table) and its bar chart (comining.report), so plotting
never has to import the module that trains the grid.
"""

from __future__ import annotations

import re

from comining.errors import UserError

METHOD_TITLES = {"standard": "Standard", "decoupling": "Decoupling", "coteaching": "Co-teaching",
                 "coteachingplus": "Co-teaching+", "jocor": "JoCoR", "peerlearning": "Peer-learning",
                 "comining": "Co-mining"}


def parse_noise(spec: str) -> tuple[str, float]:
    """'sym50' → ('symmetric', 0.5); 'asym40' → ('asymmetric', 0.4)."""
    match = re.fullmatch(r"(sym|asym)(\d{1,2})", spec.strip().lower())
    if not match:
        raise UserError(f"noise setting '{spec}' is not like sym50 or asym40: symmetric or asymmetric "
                        "(pair flip) and a percentage below 100")
    kind = "symmetric" if match.group(1) == "sym" else "asymmetric"
    return kind, int(match.group(2)) / 100


def noise_title(spec: str) -> str:
    """'sym50' → 'Symmetric-50%', the row heading of the paper's tables."""
    kind, rate = parse_noise(spec)
    return f"{kind.capitalize()}-{round(rate * 100)}%"
