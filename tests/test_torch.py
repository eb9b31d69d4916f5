"""forward, inverse and dct_kernels on PyTorch tensors (skipped where torch is not installed:
`make test-torch` installs it). References: scipy's dctn per block, torch's own conv2d, and
torch.autograd.gradcheck's finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from references import reference_blockwise_dct
from dctconv import dct_kernels, forward, inverse

torch = pytest.importorskip("torch")
functional = pytest.importorskip("torch.nn.functional")


def test_tensor_in_tensor_out_on_its_device_and_dtype(rng):
    images = rng.random((2, 3, 10, 13))
    tensor = torch.from_numpy(images)
    maps = forward(tensor, 4)
    assert isinstance(maps, torch.Tensor) and maps.dtype == torch.float64 and maps.device == tensor.device
    assert maps.shape == (2, 3, 16, 3, 4)
    np.testing.assert_allclose(maps[1, 2].numpy(), reference_blockwise_dct(images[1, 2], 4), rtol=0, atol=1e-12)
    restored = inverse(maps, (10, 13))
    assert isinstance(restored, torch.Tensor) and restored.shape == tensor.shape
    np.testing.assert_allclose(restored.numpy(), images, rtol=0, atol=1e-12)
    # uint8 tensors compute in torch's default float32.
    assert forward(torch.zeros(8, 8, dtype=torch.uint8)).dtype == torch.float32


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_forward_equals_torch_conv2d_with_the_kernels(layout, rng):
    images = torch.from_numpy(rng.random((2, 1, 16, 24))).float()
    weights = dct_kernels(8, like=images, channel_order="zigzag")[:, None]
    assert weights.dtype == torch.float32 and weights.shape == (64, 1, 8, 8)
    expected = functional.conv2d(images, weights, stride=8)[:, None]  # (N, 1, 64, rows, cols)
    maps = forward(images, 8, layout=layout, channel_order="zigzag")
    if layout == "channels_last":
        expected = expected.permute(0, 1, 3, 4, 2)
    torch.testing.assert_close(maps, expected, rtol=0, atol=1e-4)
    transposed = functional.conv_transpose2d(functional.conv2d(images, weights, stride=8), weights, stride=8)
    torch.testing.assert_close(inverse(maps, layout=layout, channel_order="zigzag"), transposed, rtol=0, atol=1e-4)


def test_autograd_matches_finite_differences_and_the_stated_vjp(rng):
    x = torch.from_numpy(rng.standard_normal((1, 5, 7))).requires_grad_()
    assert torch.autograd.gradcheck(lambda u: forward(u, 4), (x,))
    c = torch.from_numpy(rng.standard_normal((16, 2, 2))).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: inverse(v, (5, 7), layout="channels_first"), (c,))
    # forward's VJP is inverse: the gradient of <forward(x), g> is inverse(g) (no padding here).
    x = torch.from_numpy(rng.standard_normal((8, 12))).requires_grad_()
    g = rng.standard_normal((16, 2, 3))
    (forward(x, 4) * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), inverse(g), rtol=0, atol=1e-12)
