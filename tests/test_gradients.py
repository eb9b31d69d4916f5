"""Gradients of the array-API path: JAX's grad against the stated VJPs and central finite differences.

The claims (docs/layers.md): the vector-Jacobian product of forward is inverse (uncropped), and
that of inverse is forward, because the kernel matrix is orthogonal; with edge padding, forward's
VJP also adds the padded rows and columns back onto the edge pixels they copy. The references
are dctconv's numpy path for the VJPs (a different engine from the library's own array-API
code) and central finite differences of numpy computations for everything else.
"""

from __future__ import annotations

import numpy as np
import pytest

from dctconv import forward, inverse

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def central_differences(function, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d function / d x by central differences, one coordinate at a time (tiny arrays only)."""
    gradient = np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        gradient[index] = (function(x + step) - function(x - step)) / (2 * h)
    return gradient


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_forward_vjp_is_inverse(layout, rng):
    x = rng.standard_normal((2, 8, 12))
    cotangent = rng.standard_normal(np.shape(forward(x, 4, layout=layout)))
    _, vjp = jax.vjp(lambda u: forward(u, 4, layout=layout), jnp.asarray(x))
    (gradient,) = vjp(jnp.asarray(cotangent))
    np.testing.assert_allclose(np.asarray(gradient), inverse(cotangent, layout=layout), rtol=0, atol=1e-12)


@pytest.mark.parametrize("channel_order", ["frequency", "zigzag"])
def test_inverse_vjp_is_forward(channel_order, rng):
    c = rng.standard_normal((16, 2, 3))
    cotangent = rng.standard_normal((8, 12))
    _, vjp = jax.vjp(lambda v: inverse(v, channel_order=channel_order), jnp.asarray(c))
    (gradient,) = vjp(jnp.asarray(cotangent))
    np.testing.assert_allclose(np.asarray(gradient), forward(cotangent, 4, channel_order=channel_order),
                               rtol=0, atol=1e-12)


def test_grad_of_a_loss_through_padding_and_cropping_matches_finite_differences(rng):
    # 5 x 7 at n = 4: forward pads, inverse crops, and the loss is not linear.
    x = rng.standard_normal((5, 7))
    weights = rng.standard_normal((16, 2, 2))

    def loss(xp, u):
        maps = forward(u, 4)
        return xp.sum(weights * maps**2) + xp.sum(xp.tanh(inverse(0.5 * maps, (5, 7))) * u)

    gradient = jax.jit(jax.grad(lambda u: loss(jnp, u)))(jnp.asarray(x))  # jit: 7 times faster than eager here
    numeric = central_differences(lambda u: float(loss(np, u)), x)
    np.testing.assert_allclose(np.asarray(gradient), numeric, rtol=0, atol=1e-6)


def test_jit_gives_what_eager_gives(rng):
    x = jnp.asarray(rng.random((3, 9, 8)))
    layer = jax.jit(lambda u: inverse(forward(u, 4, layout="channels_last"), (9, 8), layout="channels_last"))
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(x), rtol=0, atol=1e-12)
    maps = forward(x, 4)
    assert isinstance(maps, jax.Array) and maps.dtype == jnp.float64 and maps.shape == (3, 16, 3, 2)
