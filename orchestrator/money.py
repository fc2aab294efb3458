"""US dollars as people read them, everywhere council shows an amount: ``dollars(usd)``.

Cents for a cent and more (``$1,234.56``), and for less than a cent as many decimals as make
two significant digits, trailing zeros dropped (``$0.0002``, ``$0.00031``): a budget of
$0.0002 is never shown as ``$0.00``. Zero is ``$0.00``; a negative amount has its sign in
front (``-$0.50``).
"""

from __future__ import annotations

import math

__all__ = ["dollars"]

_CENT = 0.01


def dollars(usd: float) -> str:
    """``usd`` as ``$0.00``, ``$12.34``, ``$0.0002`` (module doc); a value that is no amount
    (NaN, infinite, not a number) is a ``ValueError`` naming it."""
    if isinstance(usd, bool) or not isinstance(usd, int | float):
        raise ValueError(f"an amount of dollars must be a number, not {usd!r}")
    if not math.isfinite(usd):
        raise ValueError(f"an amount of dollars must be finite, not {usd!r}")
    sign, size = ("-" if usd < 0 else ""), abs(float(usd))
    if size == 0:
        return "$0.00"
    if size >= _CENT:
        text = f"{size:,.2f}"
    else:
        # Two significant digits: 0.00031 -> 5 decimals. Rounding may reach a cent (0.00999).
        places = 1 - math.floor(math.log10(size))
        text = f"{size:.{places}f}".rstrip("0")
        if len(text.partition(".")[2]) < 2:
            text = f"{size:.2f}"
    return f"{sign}${text}"
