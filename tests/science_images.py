"""Synthetic scientific images for the tests: small, deterministic, not photos.

* :func:`mr_slice`: a 16-bit MR-like slice using 0..215 of its 0..65535 container: an
  elliptical head of smooth tissue with darker ventricles, plus fine texture and noise.
* :func:`terrain`: fractal terrain by spectral synthesis (Gaussian noise whose spectrum
  falls as 1/f**beta), scaled to ``low .. high``: 16-bit elevation maps (0..840) or
  float32 elevations in metres (236..1076).
* :func:`with_holes`: a float raster with NaN no-data discs.
"""

from __future__ import annotations

import numpy as np


def terrain(shape=(64, 64), *, low=0.0, high=840.0, beta=3.2, seed=1, dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) * radius ** (-beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=shape)
    field = (field - field.min()) / (field.max() - field.min())
    values = low + field * (high - low)
    if np.dtype(dtype).kind in "iu":
        return np.rint(values).astype(dtype)
    return values.astype(dtype)


def mr_slice(shape=(64, 64), *, peak=215, seed=2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = shape
    y, x = np.mgrid[:height, :width]
    u, v = (y - height / 2) / (0.42 * height), (x - width / 2) / (0.36 * width)
    head = (u**2 + v**2) < 1
    ventricles = ((u / 0.35) ** 2 + ((np.abs(v) - 0.25) / 0.12) ** 2) < 1
    tissue = 0.65 + 0.2 * np.cos(5 * u + 2 * v) + 0.08 * terrain(shape, low=-1, high=1, beta=1.5, seed=seed,
                                                                 dtype=np.float64)
    image = np.where(head, tissue, 0.0) * np.where(ventricles, 0.35, 1.0)
    image += np.abs(rng.normal(0, 0.01, shape))  # Rician-like background noise
    image = image / image.max() * peak
    return np.clip(np.rint(image), 0, peak).astype(np.uint16)


def with_holes(image, *, count=3, radius=5, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.array(image, dtype=np.float32)
    height, width = image.shape
    y, x = np.mgrid[:height, :width]
    for _ in range(count):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        image[(y - cy) ** 2 + (x - cx) ** 2 < radius**2] = np.nan
    return image


def micrograph(shape=(64, 64), *, offset=100, peak=3000, cells=None, seed=4) -> np.ndarray:
    """A 16-bit fluorescence-micrograph-like image using ``offset .. ~offset + peak`` of 0..65535.

    Round cells (Gaussian blobs of random size and brightness) on a camera offset with
    uneven illumination, photon (Poisson) noise on the signal and Gaussian read noise of
    2 counts: what a 12-bit sCMOS camera writes into a 16-bit TIFF.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    y, x = np.mgrid[:height, :width].astype(np.float64)
    count = cells if cells is not None else max(3, height * width // 900)
    signal = np.zeros(shape)
    for _ in range(count):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        sigma = rng.uniform(2.0, 9.0)
        signal += rng.uniform(0.2, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    illumination = 0.8 + 0.2 * np.cos(np.pi * (y / height - 0.5)) * np.cos(np.pi * (x / width - 0.5))
    expected = 0.03 * peak + peak * np.clip(signal, 0, 1.2) / 1.2 * illumination
    counts = rng.poisson(expected) + rng.normal(0, 2.0, shape)
    return np.clip(np.rint(offset + counts), 0, 65535).astype(np.uint16)
