r"""The ten numerical checks that the convolutional block DCT is what it claims to be.

Each ``check_*`` function computes one claim against an independent reference and
returns a :class:`CheckResult`; none raises on a failed claim. The thing under test
(``forward``, ``inverse``, ``kernels``, ``save``, ``load``) is a keyword argument that
defaults to the real dctconv function, so a test can hand in a deliberately wrong one
and see the check fail.

Tolerances
----------
Every tolerance is ``EPSILON[dtype] * terms * magnitude`` (:func:`tolerance`), where
``dtype`` is what the transform computes in (float32 for float32 images, float64
otherwise), and ``terms`` and ``magnitude`` are stated by each check. The reasoning:

* Every coefficient and every reconstructed pixel is one dot product of n*n terms
  with kernel values that are themselves rounded (two cosines, two scales). Its
  rounding error is at most ``(n*n + 3) u sum|K_i p_i|`` to first order, with
  ``u = eps/2`` the unit roundoff (Higham, *Accuracy and Stability of Numerical
  Algorithms*, 2nd ed., 2002, eq. 3.5), and by Cauchy-Schwarz
  ``sum|K_i p_i| <= ||K||_2 ||p||_2 = ||p||_2 <= n max|p|`` since every kernel has unit
  norm. So :func:`product_terms` ``= n*n + 3`` counted in ``eps = 2u`` covers the
  worst case of the product under test *and* of the reference it is compared with.
* Checks that chain two products (inverse of forward, zeroing) add their terms. The
  strict worst case of a chain is up to n times larger, but only if all n*n rounding
  errors of a block line up with one cosine; rounding errors are not correlated with
  the cosines, and the probabilistic analysis of Higham and Mary (SIAM J. Sci.
  Comput. 41(5), 2019) bounds them by sqrt(n*n) growth instead. Observed errors stay
  at least 3.5 times below every tolerance (worst case over block sizes 2 to 16, the
  sample and the built-in images; the README has the numbers).
* Sums over a whole image (energies, inner products) are accumulated in float64 by
  numpy's pairwise summation, whose error is below ``log2(N) u`` of the sum; those
  checks add ``ceil(log2 N)`` terms.

With ``eps`` = 2.2e-16 (float64) and 1.2e-7 (float32), an 8-bit image and n = 8 the
coefficient tolerance is 67 * eps * 2040 = 3.0e-11 (float64) and 1.6e-2 (float32);
every deliberate error in the tests (a transposed kernel, a scale off by 1 %, a
shifted image, a rounded inverse, a changed file) is larger by orders of magnitude.

Examples
--------
>>> import numpy as np
>>> from dctconv import forward
>>> from dctconv.verify._checks import check_forward_is_dctn
>>> ramp = np.arange(64.0).reshape(8, 8)
>>> result = check_forward_is_dctn(ramp, 4, label="ramp")
>>> result.passed, result.name, result.input
(True, 'forward=dctn-per-block', 'ramp')
>>> check_forward_is_dctn(ramp, 4, forward=lambda x, n: 1.01 * forward(x, n)).passed
False
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io import _npz as _coefficient_file
from .. import kernels as _kernels
from .. import transform as _transform
from ..errors import DctconvError
from ..kernels import blocks_shape
from ..limits import DEFAULT_VERIFY_BLOCK_SIZES
from ..transform import work_dtype
from .._validation import check_block_size, check_image

#: Machine epsilon (spacing of floats at 1.0) of each dtype the transform computes in:
#: the unit every tolerance is counted in (see the module docstring).
EPSILON = {
    np.dtype(np.float64): float(np.finfo(np.float64).eps),  # 2.220446049250313e-16
    np.dtype(np.float32): float(np.finfo(np.float32).eps),  # 1.1920928955078125e-07
}

DEFAULT_BLOCK_SIZES = DEFAULT_VERIFY_BLOCK_SIZES

#: Multiply-adds allowed for the literal correlation of one image (check 2): about 0.07 s
#: for scipy.signal.correlate2d (0.3e9 per second measured), and just enough for 2 x 2
#: blocks at n = 16. It costs (H-n+1)(W-n+1) n**4, so larger images are cropped for
#: that check only (see :func:`check_forward_is_correlation`).
CORRELATION_BUDGET = 20_000_000
#: Largest side of the region the literal correlation runs on.
CORRELATION_MAX_SIDE = 128

# Stable names of the ten checks, as printed and as the "name" of the JSON output.
KERNELS_ORTHONORMAL = "kernels-orthonormal"
FORWARD_IS_CORRELATION = "forward=correlate2d"
FORWARD_IS_DCTN = "forward=dctn-per-block"
ROUND_TRIP = "inverse(forward(x))=x"
PARSEVAL = "parseval"
ADJOINT = "adjoint"
ZEROING_ENERGY = "zeroing-costs-energy"
SCALE_N4 = "n4-scale=4d(x)d(y)"
FILE_ROUND_TRIP = "file-round-trip"
FILE_MATCHES_IMAGE = "file-matches-image"
RESIDUAL_GRADIENT = "residual-block-chain-rule"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: passed when ``max_error <= tolerance``."""

    name: str
    """Which claim (one of the names above)."""
    passed: bool
    max_error: float
    """Largest difference from the reference; inf when the outputs could not be compared."""
    tolerance: float
    block_size: int
    input: str
    """What the check ran on, e.g. "random 64x64 float32"."""
    detail: str = ""
    """Why a check failed when the numbers alone do not say (e.g. a file that did not load)."""

    def as_dict(self) -> dict:
        """The JSON form: the six fields, with a non-finite max_error as None."""
        record = asdict(self)
        del record["detail"]
        if not math.isfinite(record["max_error"]):
            record["max_error"] = None
        return record


def tolerance(dtype, *, terms: float, magnitude: float) -> float:
    """Tolerance ``EPSILON[dtype] * terms * magnitude``: see the module docstring."""
    return EPSILON[work_dtype(dtype)] * float(terms) * float(magnitude)


def product_terms(block_size: int) -> int:
    """Rounding terms of one n*n-term dot product with rounded kernels: n*n + 3."""
    return block_size * block_size + 3


def _result(name, error, tol, block_size, label, detail="") -> CheckResult:
    error = float(error)
    # NaN compares False, so a NaN error fails.
    return CheckResult(name, bool(error <= tol), error, float(tol), int(block_size), label, detail)


def _unmatched(name, block_size, label, tol, detail) -> CheckResult:
    return CheckResult(name, False, math.inf, float(tol), int(block_size), label, detail)


def _dtype_label(dtype) -> str:
    return np.dtype(dtype).name


def _pad_edge(image: np.ndarray, n: int) -> np.ndarray:
    """Float64 copy padded at the bottom and right by repeating edges (np.pad, not dctconv's)."""
    height, width = image.shape
    return np.pad(image.astype(np.float64), ((0, -height % n), (0, -width % n)), mode="edge")


def _log2_terms(count: int) -> int:
    return max(1, math.ceil(math.log2(max(2, count))))


# ---------------------------------------------------------------- 1. orthonormal kernels


def check_kernels_orthonormal(block_size: int, *, dtype=np.float64, kernels=_kernels.dct_kernels) -> CheckResult:
    """Check 1: the (n*n, n*n) Gram matrix of the kernels is the identity.

    The kernels are cast to ``dtype`` (float32 is what the forward uses for float32
    images) and multiplied in it. Each Gram entry is an n*n-term dot product of values
    whose absolute products sum to at most 1 (unit-norm kernels), and each kernel
    value carries about 3 roundings (one more for the cast to float32), so the
    tolerance is ``EPSILON[dtype] * (n*n + 3) * 1``.
    """
    n = check_block_size(block_size)
    label = f"dct_kernels {_dtype_label(dtype)}"
    weights = np.asarray(kernels(n), dtype=dtype).reshape(n * n, n * n)
    error = np.max(np.abs(weights @ weights.T - np.eye(n * n)))
    return _result(KERNELS_ORTHONORMAL, error, tolerance(dtype, terms=product_terms(n), magnitude=1.0), n, label)


# ---------------------------------------------------------------- 2. literal strided correlation


def _correlation_blocks(grid: tuple[int, int], n: int) -> tuple[int, int]:
    """Block rows and columns the literal correlation can afford (CORRELATION_BUDGET)."""
    side = max(1, CORRELATION_MAX_SIDE // n)

    def cost(k):
        return ((k - 1) * n + 1) ** 2 * n**4

    while side > 1 and cost(side) > CORRELATION_BUDGET:
        side -= 1
    return min(grid[0], side), min(grid[1], side)


def check_forward_is_correlation(
    image, block_size: int, *, label: str = "image", forward=_transform.forward,
    kernels=_kernels.dct_kernels,
) -> CheckResult:
    """Check 2: the forward equals each kernel slid over the image, sampled every n pixels.

    This is the seed claim, done literally: the image is edge-padded with ``np.pad``,
    each of the n*n kernels is correlated with it by ``scipy.signal.correlate2d``
    (mode "valid": every position, stride 1) and every n-th row and column of the
    result is kept. That costs (H-n+1)(W-n+1) n**4 multiply-adds, so only the
    bottom-right corner of the padded image that fits ``CORRELATION_BUDGET`` (and at
    most 128 x 128 pixels) is correlated; the corner is chosen because it holds the
    padding. ``forward`` still runs on the whole image and its matching blocks are
    compared; ``label`` then says which corner.

    Tolerance: ``EPSILON[dtype] * (n*n + 3) * n max|x|``, the worst case of one
    n*n-term dot product, on both sides, for coefficients of at most ``n max|x|``.
    """
    import scipy.signal

    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    padded = _pad_edge(image, n)
    grid = blocks_shape(image.shape, n)
    rows, cols = _correlation_blocks(grid, n)
    corner = padded[(grid[0] - rows) * n :, (grid[1] - cols) * n :]
    if (rows, cols) != grid:
        label = f"{label} (bottom-right {rows * n}x{cols * n})"
    tol = tolerance(dtype, terms=product_terms(n), magnitude=n * float(np.max(np.abs(padded))))
    weights = np.asarray(kernels(n), dtype=np.float64)
    # Channel x*n + y of the library is kernel x*n + y; any other order fails.
    reference = np.stack([
        scipy.signal.correlate2d(corner, weights[k], mode="valid")[::n, ::n] for k in range(n * n)
    ])
    coefficients = np.asarray(forward(image, n))
    if coefficients.shape != (n * n, *grid):
        return _unmatched(FORWARD_IS_CORRELATION, n, label, tol,
                          f"forward returned shape {coefficients.shape}, expected {(n * n, *grid)}")
    tested = coefficients[:, grid[0] - rows :, grid[1] - cols :].astype(np.float64)
    return _result(FORWARD_IS_CORRELATION, np.max(np.abs(tested - reference)), tol, n, label)


# ---------------------------------------------------------------- 3. scipy.fft.dctn per block


def check_forward_is_dctn(image, block_size: int, *, label: str = "image", forward=_transform.forward) -> CheckResult:
    """Check 3: the forward equals ``scipy.fft.dctn(block, norm="ortho")`` on every block.

    The reference pads with ``np.pad`` (edge), splits the image into blocks by a
    reshape and calls dctn over the two in-block axes of all blocks at once; scipy
    computes the DCT by FFT, an algorithm unrelated to dctconv's matrix product.
    Tolerance: ``EPSILON[dtype] * (n*n + 3) * n max|x|`` as for check 2 (the FFT's
    own error, O(log n) u, is smaller than the n*n-term product's).
    """
    import scipy.fft

    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    padded = _pad_edge(image, n)
    rows, cols = padded.shape[0] // n, padded.shape[1] // n
    blocks = scipy.fft.dctn(padded.reshape(rows, n, cols, n), axes=(1, 3), norm="ortho")
    # (r, x, s, y) -> channel x*n + y, block (r, s)
    reference = blocks.transpose(1, 3, 0, 2).reshape(n * n, rows, cols)
    tol = tolerance(dtype, terms=product_terms(n), magnitude=n * float(np.max(np.abs(padded))))
    coefficients = np.asarray(forward(image, n))
    if coefficients.shape != reference.shape:
        return _unmatched(FORWARD_IS_DCTN, n, label, tol,
                          f"forward returned shape {coefficients.shape}, expected {reference.shape}")
    return _result(FORWARD_IS_DCTN, np.max(np.abs(coefficients.astype(np.float64) - reference)), tol, n, label)


# ---------------------------------------------------------------- 4. round trip


def check_round_trip(
    image, block_size: int, *, label: str = "image", forward=_transform.forward, inverse=_transform.inverse,
) -> CheckResult:
    """Check 4: ``inverse(forward(x), x.shape)`` gives back ``x``, padding cropped away.

    Tolerance: ``EPSILON[dtype] * 2 (n*n + 3) * n max|x|``: every intermediate value
    is at most ``n max|x|`` and each of the two products is an n*n-term dot product
    (see the module docstring on chained products).
    """
    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    tol = tolerance(dtype, terms=2 * product_terms(n), magnitude=n * float(np.max(np.abs(image.astype(np.float64)))))
    restored = np.asarray(inverse(forward(image, n), image.shape))
    if restored.shape != image.shape:
        return _unmatched(ROUND_TRIP, n, label, tol,
                          f"inverse returned shape {restored.shape}, expected {image.shape}")
    error = np.max(np.abs(restored.astype(np.float64) - image.astype(np.float64)))
    return _result(ROUND_TRIP, error, tol, n, label)


# ---------------------------------------------------------------- 5. Parseval


def check_parseval(image, block_size: int, *, label: str = "image", forward=_transform.forward) -> CheckResult:
    """Check 5: the sum of squared coefficients equals the sum of squared padded pixels.

    Both energies are summed in float64. ``max_error`` is the absolute difference
    of the two energies. Tolerance: ``EPSILON[dtype] * (n*n + 3 + ceil(log2 N)) * E``
    with E the energy of the edge-padded image and N its pixel count: per block the
    energy error is about ``2 <c, delta>`` with delta the n*n-term rounding of the
    coefficients, plus the pairwise-summation error of the two sums.
    """
    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    padded = _pad_edge(image, n)
    energy = float(np.sum(padded * padded))
    coefficients = np.asarray(forward(image, n), dtype=np.float64)
    tol = tolerance(dtype, terms=product_terms(n) + _log2_terms(padded.size), magnitude=energy)
    return _result(PARSEVAL, abs(float(np.sum(coefficients * coefficients)) - energy), tol, n, label)


# ---------------------------------------------------------------- 6. adjoint


def check_adjoint(
    block_size: int, *, dtype=np.float64, grid: tuple[int, int] = (5, 7), seed: int = 0,
    forward=_transform.forward, inverse=_transform.inverse,
) -> CheckResult:
    """Check 6: the inverse is the adjoint of the forward, ``<F x, c> = <x, F^T c>``.

    ``x`` (``grid`` blocks of n x n pixels) and ``c`` (n*n maps of ``grid``) are
    standard normal in ``dtype`` from ``numpy.random.default_rng(seed)``; ``F^T c``
    is ``inverse(c)`` without cropping. The inner products are summed in float64.
    Tolerance: ``EPSILON[dtype] * (n*n + 3 + ceil(log2 N)) * ||x|| ||c||``, since
    ``|<F x, c>| <= ||x|| ||c||`` and each side carries one n*n-term rounding.
    """
    n = check_block_size(block_size)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    rows, cols = grid
    x = rng.standard_normal((rows * n, cols * n)).astype(dtype)
    c = rng.standard_normal((n * n, rows, cols)).astype(dtype)
    label = f"random x, c ({rows * n}x{cols * n}) {dtype.name}"
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    tol = tolerance(dtype, terms=product_terms(n) + _log2_terms(x.size),
                    magnitude=float(np.linalg.norm(x64)) * float(np.linalg.norm(c64)))
    fx = np.asarray(forward(x, n), dtype=np.float64)
    ftc = np.asarray(inverse(c), dtype=np.float64)
    if fx.shape != c.shape or ftc.shape != x.shape:
        return _unmatched(ADJOINT, n, label, tol,
                          f"forward gave {fx.shape} (expected {c.shape}), inverse gave {ftc.shape} "
                          f"(expected {x.shape})")
    error = abs(float(np.vdot(fx, c64)) - float(np.vdot(x64, ftc)))
    return _result(ADJOINT, error, tol, n, label)


# ---------------------------------------------------------------- 7. zeroing costs energy


def check_zeroing_energy(
    image, block_size: int, *, label: str = "image", seed: int = 0, fraction: float = 0.5,
    forward=_transform.forward, inverse=_transform.inverse,
) -> CheckResult:
    """Check 7: zeroing coefficients costs exactly their energy.

    A random ``fraction`` of the coefficients (``default_rng(seed)``) is set to zero;
    the squared error between the edge-padded image and the uncropped float
    reconstruction must equal the sum of squares of the zeroed coefficients. This is
    the identity behind every error number of ``dctconv compress``.
    Tolerance: ``EPSILON[dtype] * (2 (n*n + 3) + ceil(log2 N)) * E`` with E the energy of
    the padded image: two n*n-term products (forward and inverse) each perturb an
    energy of at most E, plus the float64 sums.
    """
    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    padded = _pad_edge(image, n)
    energy = float(np.sum(padded * padded))
    tol = tolerance(dtype, terms=2 * product_terms(n) + _log2_terms(padded.size), magnitude=energy)
    coefficients = np.asarray(forward(image, n))
    zeroed = np.random.default_rng(seed).random(coefficients.shape) < fraction
    kept = np.where(zeroed, 0, coefficients).astype(coefficients.dtype)
    reconstruction = np.asarray(inverse(kept), dtype=np.float64)
    if reconstruction.shape != padded.shape:
        return _unmatched(ZEROING_ENERGY, n, label, tol,
                          f"inverse returned shape {reconstruction.shape}, expected {padded.shape}")
    lost = coefficients[zeroed].astype(np.float64)
    error = abs(float(np.sum((padded - reconstruction) ** 2)) - float(np.sum(lost * lost)))
    return _result(ZEROING_ENERGY, error, tol, n, label)


# ---------------------------------------------------------------- 8. the n = 4 scale


def check_scale_n4(*, dtype=np.float64, kernels=_kernels.dct_kernels) -> CheckResult:
    """Check 8: for n = 4, the kernel scale a(x) a(y) equals 4 d(x) d(y).

    d(0) = 1/4 and d(k > 0) = sqrt(2)/4 are written here from the statement, not
    from dctconv. The scale of each returned kernel is recovered by dividing it by
    its cosine product cos(pi (i+1/2) x / 4) cos(pi (j+1/2) y / 4), computed here;
    for n = 4 no cosine is zero (the smallest product is cos(3 pi/8)**2 = 0.146). The
    recovered scale must be the same for all 16 pixels and equal 4 d(x) d(y).
    Tolerance: ``EPSILON[dtype] * 19 * 0.5`` (0.5 = the largest scale): a kernel value
    carries a few roundings (and the cast to ``dtype``), amplified at most 1/0.146
    times by the division.
    """
    n = 4
    d = np.array([1 / 4] + [math.sqrt(2) / 4] * (n - 1))
    expected = 4 * np.outer(d, d)
    angle = np.pi * (np.arange(n)[None, :] + 0.5) * np.arange(n)[:, None] / n
    cosines = np.cos(angle)  # [x, i]
    products = np.einsum("xi,yj->xyij", cosines, cosines)
    weights = np.asarray(kernels(n), dtype=dtype).astype(np.float64).reshape(n, n, n, n)
    scale = weights / products
    error = np.max(np.abs(scale - expected[:, :, None, None]))
    return _result(SCALE_N4, error, tolerance(dtype, terms=product_terms(n), magnitude=float(expected.max())), n,
                   f"dct_kernels {_dtype_label(dtype)}")


# ---------------------------------------------------------------- 9. file round trip


def check_file_round_trip(
    image, block_size: int, *, label: str = "image", forward=_transform.forward, inverse=_transform.inverse,
    save=_coefficient_file.save_coefficients, load=_coefficient_file.load_coefficients,
) -> CheckResult:
    """Check 9: a coefficient file written and read back holds the same coefficients.

    ``save`` writes ``forward(image)`` to a temporary ``.npz`` file, ``load`` reads it;
    the coefficients, their dtype, the header's block size and image shape, and the
    reconstruction ``inverse(coefficients, image_shape)`` must all be identical.
    Tolerance 0: npy stores the float bits as they are, so any difference is a bug.
    A file that does not load, or comes back with another shape, dtype or header,
    fails with ``max_error`` inf and the reason in ``detail``.
    """
    n = check_block_size(block_size)
    image = check_image(image)
    coefficients = np.asarray(forward(image, n))
    header = _coefficient_file.CoefficientHeader(
        block_size=n, image_shape=image.shape, image_mode="F", source=label,
    )
    with tempfile.TemporaryDirectory(prefix="dctconv-verify-") as folder:
        path = Path(folder) / "check.npz"
        try:
            save(path, coefficients, header)
            loaded, loaded_header = load(path)
        except DctconvError as exc:
            return _unmatched(FILE_ROUND_TRIP, n, label, 0.0, f"written file did not load: {exc}")
    loaded = np.asarray(loaded)
    if loaded.shape != coefficients.shape or loaded.dtype != coefficients.dtype:
        return _unmatched(FILE_ROUND_TRIP, n, label, 0.0,
                          f"read back {loaded.dtype} {loaded.shape}, wrote {coefficients.dtype} "
                          f"{coefficients.shape}")
    if (loaded_header.block_size, tuple(loaded_header.image_shape)) != (n, image.shape):
        return _unmatched(FILE_ROUND_TRIP, n, label, 0.0,
                          f"header read back as block size {loaded_header.block_size}, image shape "
                          f"{loaded_header.image_shape}; wrote {n}, {image.shape}")
    before = np.asarray(inverse(coefficients, image.shape), dtype=np.float64)
    after = np.asarray(inverse(loaded, loaded_header.image_shape), dtype=np.float64)
    error = max(
        float(np.max(np.abs(loaded.astype(np.float64) - coefficients.astype(np.float64)))),
        float(np.max(np.abs(after - before))),
    )
    return _result(FILE_ROUND_TRIP, error, 0.0, n, label)


# ---------------------------------------------------------------- 10. a residual block's chain rule


def soft_shrink(coefficients: np.ndarray, threshold: float) -> np.ndarray:
    """S_t(c) = sign(c) max(|c| - t, 0): soft shrinkage, the inner path of a DCT-domain denoiser."""
    return np.sign(coefficients) * np.maximum(np.abs(coefficients) - threshold, 0.0)


def _jacobian_by_differences(function, point: np.ndarray, step: float) -> np.ndarray:
    """(outputs, inputs) Jacobian of ``function`` at ``point`` by central differences.

    ``function`` maps a stack of inputs to the stack of their outputs (as forward and
    inverse do), so all the shifted points go through it in two calls.
    """
    shifts = (step * np.eye(point.size)).reshape(point.size, *point.shape)
    ahead = np.asarray(function(point + shifts), np.float64).reshape(point.size, -1)
    behind = np.asarray(function(point - shifts), np.float64).reshape(point.size, -1)
    return ((ahead - behind) / (2 * step)).T


def _jacobian_from_vjps(vjp, output_shape, size: int) -> np.ndarray:
    """(outputs, inputs) Jacobian whose row k is ``vjp`` of the k-th unit cotangent (all of them as one stack)."""
    units = np.eye(size).reshape(size, *output_shape)
    return np.asarray(vjp(units), np.float64).reshape(size, -1)


def check_residual_gradient(
    block_size: int, *, grid: tuple[int, int] | None = None, seed: int = 0, step: float = 2.0**-20,
    forward=_transform.forward, inverse=_transform.inverse,
) -> CheckResult:
    r"""Check 10: every term of the chain rule of a residual block on the transform, by central differences.

    The block is :math:`G(x) = F^T\,(y + S_\theta(y))`, :math:`y = F x`: the skip path
    :math:`y` plus the soft shrinkage :math:`S_\theta` of the coefficients, mapped back by
    the inverse :math:`F^T` (so :math:`G(x) = x + F^T S_\theta(F x)`, the image-domain
    residual form, since :math:`F^T F = I`). Its Jacobian, assembled from the stated
    vector-Jacobian products (forward's is the inverse, the inverse's the forward), is

    .. math::

        \frac{\partial G}{\partial x} = F^T F + F^T D F, \qquad
        \frac{\partial G}{\partial \theta} = -F^T\,(\operatorname{sign}(y) \odot m),

    with :math:`D = \operatorname{diag}(m)`, :math:`m = [|y| > \theta]`. Each term is
    compared with central differences (step h) of the function it differentiates:
    forward's Jacobian with the rows ``inverse(e_k)``, the inverse's with ``forward(e_p)``,
    the shrinkage's with D, the skip path :math:`F^T F` with the identity, G's whole
    Jacobian and its derivative in :math:`\theta` with the assembled ones, and, at a
    :math:`\theta` above every :math:`|y|` (where the inner path's gradient vanishes),
    G's Jacobian with the identity alone: the skip path's term that survives.

    ``x`` is standard normal (``default_rng(seed)``) on ``grid`` blocks of n x n (default
    2 x 2, and 1 x 2 from n = 9 on, where the Jacobians grow as n**4), in
    float64; :math:`\theta` is the median of :math:`|y|`, so half the coefficients are
    shrunk to zero; no :math:`|y|` lies within 8 h of :math:`\theta`, where the
    shrinkage has its kinks. Every map here is piecewise linear, so a central
    difference has no truncation error: each quotient is off only by the rounding of
    its two evaluations over 2h. Tolerance: ``EPSILON[float64] * (2 (n*n + 3) + 2) * M / h``
    with M the largest :math:`|G|` (two n*n-term products and the shrinkage's two roundings).
    """
    n = check_block_size(block_size)
    rng = np.random.default_rng(seed)
    rows, cols = grid or ((2, 2) if n <= 8 else (1, 2))
    x = rng.standard_normal((rows * n, cols * n))
    label = f"residual x + F^T S(F x) ({rows * n}x{cols * n}) float64"
    y = np.asarray(forward(x, n), np.float64)
    magnitudes = np.sort(np.abs(y).reshape(-1))
    threshold = float(np.median(magnitudes))
    # Move the threshold into the widest gap between magnitudes near the median, away from the kinks.
    middle = magnitudes.size // 2
    near = magnitudes[max(0, middle - 4) : middle + 5]
    widest = int(np.argmax(np.diff(near)))
    threshold = float(near[widest] + near[widest + 1]) / 2

    def block(image, theta=threshold):
        coefficients = np.asarray(forward(image, n), np.float64)
        return np.asarray(inverse(coefficients + soft_shrink(coefficients, theta)), np.float64)

    magnitude = max(1.0, float(np.max(np.abs(block(x)))), float(np.max(np.abs(y))))
    tol = EPSILON[np.dtype(np.float64)] * (2 * product_terms(n) + 2) * magnitude / step
    if y.shape != (n * n, rows, cols):
        return _unmatched(RESIDUAL_GRADIENT, n, label, tol, f"forward gave {y.shape}, expected {(n * n, rows, cols)}")
    if np.min(np.abs(np.abs(y) - threshold)) <= 8 * step:
        return _unmatched(RESIDUAL_GRADIENT, n, label, tol, "a coefficient lies on the shrinkage's kink")
    size = x.size
    mask = (np.abs(y) > threshold).astype(np.float64)
    # The stated VJPs: forward's Jacobian has rows inverse(e_k), the inverse's has rows forward(e_p).
    forward_jacobian = _jacobian_from_vjps(inverse, y.shape, size)
    inverse_jacobian = _jacobian_from_vjps(lambda image: forward(image, n), x.shape, size)
    shrink_jacobian = np.diag(mask.reshape(-1))
    skip = inverse_jacobian @ forward_jacobian
    assembled = skip + inverse_jacobian @ shrink_jacobian @ forward_jacobian
    assembled_theta = inverse_jacobian @ (-np.sign(y) * mask).reshape(-1)
    quiet = float(magnitudes[-1]) + 1.0  # above every |y|: the inner path's gradient is zero
    terms = {
        "dF/dx": (_jacobian_by_differences(lambda image: forward(image, n), x, step), forward_jacobian),
        "dF^T/dc": (_jacobian_by_differences(inverse, y, step), inverse_jacobian),
        "dS/dy": (_jacobian_by_differences(lambda c: soft_shrink(c, threshold), y, step), shrink_jacobian),
        "skip F^T F": (_jacobian_by_differences(lambda image: inverse(forward(image, n)), x, step), np.eye(size)),
        "dG/dx": (_jacobian_by_differences(block, x, step), assembled),
        "dG/dtheta": ((block(x, threshold + step) - block(x, threshold - step)).reshape(-1) / (2 * step),
                      assembled_theta),
        "dG/dx, S' = 0": (_jacobian_by_differences(lambda image: block(image, quiet), x, step), np.eye(size)),
    }
    errors = {name: float(np.max(np.abs(numeric - stated))) for name, (numeric, stated) in terms.items()}
    worst = max(errors, key=errors.get)
    result = _result(RESIDUAL_GRADIENT, errors[worst], tol, n, label)
    if not result.passed:
        detail = ", ".join(f"{name} {error:.1e}" for name, error in errors.items())
        return CheckResult(result.name, False, result.max_error, result.tolerance, n, label, f"off by: {detail}")
    return result


# ---------------------------------------------------------------- running them


def builtin_images(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The command's own test images, (label, image), with values from 0 to 255.

    Random (float64 and float32: the float32 one exercises the float32 tolerances),
    constant, a diagonal ramp, the checkerboard at the highest frequency
    ((-1)**(i+j) pattern, every block's (n-1, n-1) coefficient) and an odd-sized
    random image whose sides are multiples of no block size from 2 to 64.
    """
    rng = np.random.default_rng(seed)
    side = 64
    i, j = np.indices((side, side))
    random = 255 * rng.random((side, side))
    return [
        (f"random {side}x{side}", random),
        (f"random {side}x{side} float32", random.astype(np.float32)),
        (f"constant {side}x{side}", np.full((side, side), 200.0)),
        (f"ramp {side}x{side}", 255 * (i + j) / (2 * side - 2)),
        (f"checkerboard {side}x{side}", 255.0 * ((i + j) % 2)),
        ("random 37x23", 255 * rng.random((37, 23))),
    ]


def kernel_checks(block_sizes=DEFAULT_BLOCK_SIZES) -> list[CheckResult]:
    """Checks that need no image (1, 6 and, for n = 4, 8, in float64 and float32; 10 in float64)."""
    results = []
    for n in block_sizes:
        for dtype in (np.float64, np.float32):
            results.append(check_kernels_orthonormal(n, dtype=dtype))
        for dtype in (np.float64, np.float32):
            results.append(check_adjoint(n, dtype=dtype))
        if n == 4:
            for dtype in (np.float64, np.float32):
                results.append(check_scale_n4(dtype=dtype))
        results.append(check_residual_gradient(n))
    return results


def image_checks(image, block_sizes=DEFAULT_BLOCK_SIZES, *, label: str = "image") -> list[CheckResult]:
    """Checks 2, 3, 4, 5, 7 and 9 of one image, at each block size."""
    image = check_image(image)
    results = []
    # A float32 image whose coefficients overflow (n * max|pixel| > 3.4e38) gives inf
    # and NaN differences: they are reported as an infinite error (FAIL), not warned about.
    with np.errstate(over="ignore", invalid="ignore"):
        for n in block_sizes:
            forward = _computed_once(image, n)
            for check in (check_forward_is_correlation, check_forward_is_dctn, check_round_trip,
                          check_parseval, check_zeroing_energy, check_file_round_trip):
                results.append(check(image, n, label=label, forward=forward))
    return results


def _computed_once(image, block_size):
    """The real forward, computed once for this image and block size and shared by the checks."""
    coefficients = _transform.forward(image, block_size)

    def forward(other, n):
        if other is image and n == block_size:
            return coefficients.copy()  # a copy, so no check can change what the next one sees
        return _transform.forward(other, n)

    return forward


def run_checks(block_sizes=DEFAULT_BLOCK_SIZES) -> list[CheckResult]:
    """All ten checks on the built-in images (:func:`builtin_images`), ordered by block size."""
    block_sizes = [check_block_size(n) for n in block_sizes]
    results = kernel_checks(block_sizes)
    for label, image in builtin_images():
        results += image_checks(image, block_sizes, label=label)
    return sort_checks(results)


def sort_checks(results) -> list[CheckResult]:
    """Group results by block size, keeping their order within each."""
    return sorted(results, key=lambda result: result.block_size)
