"""Natural log and exp written as plain arithmetic, so that numba loops calling them vectorise.

numba from PyPI has no SVML, so ``math.log`` and ``math.exp`` in a compiled loop are scalar libm
calls and keep the loop from vectorising. :func:`vector_log` and :func:`vector_exp` are built
from integer and floating-point arithmetic only (a float's bits read through an int64 bitcast), so
LLVM inlines them and emits AVX2 or AVX-512 instructions for loops over them. They stay within 1
and 2 units in the last place of numpy's log and exp (tested over the whole double range).
Their only fast-math flag is ``contract`` (fused multiply-adds); none is ``nnan``, ``ninf`` or
``reassoc``, so infinities and NaNs still propagate and the polynomials keep their order. The sums
here (:func:`dot`, :func:`total`, :func:`sum_x_log_x`) add ``reassoc``, which lets their reductions
vectorise; that changes only the rounding of a sum of at most a few hundred terms.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "dot",
    "log_from_parts",
    "log_parts",
    "sum_x_log_x",
    "total",
    "vector_exp",
    "vector_log",
]

_FLAGS = {"contract"}

_SUM_FLAGS = {"contract", "reassoc"}
"""Sums may be reordered, so that LLVM splits them over vector lanes (a change in rounding only)."""

_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
"""Bits of sqrt(1/2): subtracting them splits x into 2^k z with z in [sqrt(1/2), sqrt(2))."""

_EXPONENT_MASK = -(1 << 52)
"""The sign and exponent bits of a float64, as an int64."""

_SMALLEST_NORMAL = 2.2250738585072014e-308
_TWO_TO_54 = 18014398509481984.0
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_ROUND_MAGIC = 6755399441055744.0
"""1.5 x 2^52: adding and subtracting it rounds a float of magnitude < 2^51 to an integer."""

_EXP_UNDERFLOW = -708.0
"""Below this, exp(x) is under 3e-308 and :func:`vector_exp` returns 0."""

# fdlibm e_log.c: minimax polynomial in s^2 for log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)),
# s = f / (2 + f), |s| <= 0.1716; error under 2^-58.45
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@intrinsic
def _float_bits(typingctx, value):  # pragma: no cover - compiled
    """The bits of a float64 as an int64 (an LLVM bitcast, free in registers)."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, value):  # pragma: no cover - compiled
    """The float64 whose bits are this int64."""
    if value != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def vector_log(x):  # pragma: no cover - compiled
    """Natural log of a positive float64 (subnormals included), within 1 ulp of libm.

    A zero gives a finite, meaningless value (about -745), which callers multiply by that zero;
    infinity and NaN give NaN or a finite value, so callers must check their inputs or outputs.
    """
    is_subnormal = x < _SMALLEST_NORMAL
    exponent, f = log_parts(x * _TWO_TO_54 if is_subnormal else x)
    return log_from_parts(exponent - (54.0 if is_subnormal else 0.0), f, 1.0 / (2.0 + f))


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def log_parts(x):  # pragma: no cover - compiled
    """Split a positive normal x into 2^exponent (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).

    Zero and subnormals give finite, meaningless parts. Returns (exponent as a float, f).
    """
    bits = _float_bits(x)
    offset = bits - _SQRT_HALF_BITS
    return float(offset >> 52), _bits_float(bits - (offset & _EXPONENT_MASK)) - 1.0


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def log_from_parts(exponent, f, reciprocal):  # pragma: no cover - compiled
    """log(2^exponent (1 + f)) given reciprocal = 1 / (2 + f), by fdlibm's e_log.c polynomial.

    Taking the reciprocal from the caller lets a loop share one division between it and another
    quotient (1 / (xy) gives both 1 / x and 1 / y), as division is the slowest SIMD operation.
    """
    half_square = 0.5 * f * f
    s = f * reciprocal
    z = s * s
    w = z * z
    odd = w * (_LG2 + w * (_LG4 + w * _LG6))
    even = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = even + odd
    return exponent * _LN2_HI - ((half_square - (s * (half_square + r) + exponent * _LN2_LO)) - f)


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def vector_exp(x):  # pragma: no cover - compiled
    """exp(x) for finite x <= 709, within 2 ulp of libm; 0 for x < -708 (results under 3e-308).

    x = n log 2 + r with |r| <= log(2) / 2, exp(r) by its Taylor series to r^13 (truncation under
    4e-18 relative), and 2^n built from its exponent bits.
    """
    n = (x * _INV_LN2 + _ROUND_MAGIC) - _ROUND_MAGIC
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_float((int(n) + 1023) << 52)
    return p * scale if x >= _EXP_UNDERFLOW else 0.0


@njit(cache=True, error_model="numpy", fastmath=_SUM_FLAGS)
def dot(x, y):  # pragma: no cover - compiled
    """sum_i x[i] y[i] over two 1-d arrays of the same length."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * y[i]
    return total


@njit(cache=True, error_model="numpy", fastmath=_SUM_FLAGS)
def total(x):  # pragma: no cover - compiled
    """sum_i x[i] over a 1-d array."""
    result = 0.0
    for i in range(x.shape[0]):
        result += x[i]
    return result


@njit(cache=True, error_model="numpy", fastmath=_SUM_FLAGS)
def sum_x_log_x(x, n):  # pragma: no cover - compiled
    """sum_{i < n} x[i] log x[i] for x >= 0 (zeros add 0)."""
    total = 0.0
    for i in range(n):
        total += x[i] * vector_log(x[i])
    return total
