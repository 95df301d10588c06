"""Real CPU sparse kernels, registered by name (`KERNELS`), and the timing harness around them.

    from simsparse.kernels import KERNELS
    kern = KERNELS.get("condensed")
    y = kern.run(kern.prepare(weight, mask), x)

The contract is in `kernels.base`; each kernel module registers its class on import, and this
package imports them all. Storage layouts and their constants live in `simsparse.masks.formats`.
"""

from __future__ import annotations

from simsparse.kernels import condensed, csr, dense, nm, shrunk  # noqa: F401  (each registers its kernel)
from simsparse.kernels.base import KERNELS, Kernel, check_inputs, check_x, masked_weight

__all__ = ["KERNELS", "Kernel", "check_inputs", "check_x", "masked_weight"]
