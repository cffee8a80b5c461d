"""What every benchmark reports of a measure taken once per round: median, min, max."""

from __future__ import annotations

import statistics


def spread(values: list[float]) -> dict[str, float | int]:
    """Median, min and max of ``values`` (rounded to 3 places), and how many rounds gave them."""
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "rounds": len(values)}
