"""Noise settings as a grid names them (sym50, asym40, sym20-open20) and as the paper's tables print them.

Shared by the table of a grid (comining.table) and its bar chart (comining.report); a method's title
is on its class (``comining.methods``).
"""

from __future__ import annotations

import re

from comining.errors import UserError

def parse_noise(spec: str) -> tuple[str, float, float | None]:
    """'sym50' → ('symmetric', 0.5, None); 'asym40' → ('asymmetric', 0.4, None);
    'sym20-open20' → ('symmetric', 0.2, 0.2). None: the open-set ratio of the grid's settings."""
    match = re.fullmatch(r"(sym|asym)(\d{1,2})(?:-open(\d{1,2}))?", spec.strip().lower())
    if not match:
        raise UserError(f"noise setting '{spec}' is not like sym50, asym40 or sym20-open20: symmetric or "
                        "asymmetric (pair flip), a percentage below 100, and optionally an open-set percentage")
    kind = "symmetric" if match.group(1) == "sym" else "asymmetric"
    open_ratio = int(match.group(3)) / 100 if match.group(3) else None
    return kind, int(match.group(2)) / 100, open_ratio


def noise_title(spec: str) -> str:
    """'sym50' → 'Symmetric-50%', the row heading of the paper's tables; open-set rows add '+ open-20%'."""
    kind, rate, open_ratio = parse_noise(spec)
    return f"{kind.capitalize()}-{round(rate * 100)}%" + (f" + open-{round(open_ratio * 100)}%" if open_ratio else "")
