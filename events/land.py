"""Land classes and areas: decimals in mu, never floats, because areas decide accountability."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class LandClass(StrEnum):
    """Land classes as the seed names them."""

    permanent_basic_farmland = "permanent_basic_farmland"
    cultivated = "cultivated"
    other_agricultural = "other_agricultural"
    construction = "construction"
    unused = "unused"


# 1 mu = 10000/15 m²: this quotient is inexact, so it is for display only.
M2_PER_MU = Decimal(10000) / Decimal(15)
# Its inverse is exact: convert m² to mu by multiplying by this.
MU_PER_M2 = Decimal("0.0015")
# No single parcel is this large; bigger is a unit mistake (m² typed as mu).
MAX_PARCEL_MU = Decimal("100000")


def m2_to_mu(area_m2: Decimal) -> Decimal:
    """Exact conversion: 6670 m² is 10.005 mu (trailing zeros dropped, no exponent)."""
    mu = area_m2 * MU_PER_M2
    return mu.quantize(Decimal(1)) if mu == mu.to_integral_value() else mu.normalize()


def is_cultivated(land_class: LandClass) -> bool:
    """Permanent basic farmland IS cultivated land, so it counts toward the 10 mu threshold."""
    return land_class in (LandClass.permanent_basic_farmland, LandClass.cultivated)
