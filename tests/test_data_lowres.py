"""tinyface.data.lowres: spectra, detail energy kept, raw-pixel nearest neighbour."""
import numpy as np
import pytest

from tinyface.data import load_dataset
from tinyface.data.lowres import (band_share, detail_energy_kept, luminance,
                                  nearest_neighbour_accuracy, radial_power_spectrum)


def _cosine_image(H, k, amplitude, offset=100.0):
    """(1, 3, H, H) float: k cycles across the width, the same in every channel."""
    x = offset + amplitude * np.cos(2 * np.pi * k * np.arange(H) / H)      # (H,)
    return np.broadcast_to(x[None, None, None, :], (1, 3, H, H)).copy()


@pytest.mark.parametrize("H,k", [(16, 3), (32, 5), (64, 8)])
def test_cosine_puts_amplitude_squared_over_two_in_its_ring(H, k):
    freqs, power = radial_power_spectrum(_cosine_image(H, k, 10.0), window=False)
    assert freqs[0] == 0 and freqs[-1] == round(H / np.sqrt(2))
    assert power[k] == pytest.approx(50.0, rel=1e-12)
    assert np.sum(np.delete(power, k)) == pytest.approx(0.0, abs=1e-9)


def test_parseval_and_constant_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 3, 16, 16)).astype(np.uint8)
    g = luminance(x)
    expect = np.mean((g - g.mean(axis=(1, 2), keepdims=True)) ** 2)
    assert radial_power_spectrum(x, window=False)[1].sum() == pytest.approx(expect, rel=1e-10)
    const = np.full((2, 3, 8, 8), 77, np.uint8)
    for window in (True, False):
        assert np.all(radial_power_spectrum(const, window)[1] == 0)


def test_window_keeps_a_cosine_near_its_ring():
    _, power = radial_power_spectrum(_cosine_image(64, 8, 10.0), window=True)
    assert power[7:10].sum() / power.sum() > 0.99


def test_spectrum_rejects_bad_shapes():
    with pytest.raises(ValueError):
        radial_power_spectrum(np.zeros((2, 3, 8, 6)))
    with pytest.raises(ValueError):
        radial_power_spectrum(np.zeros((8, 8)))


def test_band_share():
    f = np.arange(5)
    assert band_share(f, [9, 1, 1, 2, 0], [9, 2, 2, 4, 4], 3) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        band_share(f, np.ones(5), np.zeros(5), 1)


def test_detail_energy_kept_grows_with_size():
    ds = load_dataset("synthetic", n_identities=4, images_per_identity=4, seed=0)
    res = detail_energy_kept(ds.images, (8, 16, 32), f_min=4)
    kept = [res["kept"][s] for s in (8, 16, 32)]
    assert kept[0] < kept[1] < kept[2] <= 1.05
    assert kept[0] < 0.1 and kept[2] > 0.3
    for s in (8, 16, 32):      # nothing survives far above the LR Nyquist frequency
        assert res["lr"][s].shape == res["hr"].shape
        assert res["lr"][s][res["freqs"] >= s].sum() < 0.05 * res["hr"][res["freqs"] >= s].sum()


def test_nearest_neighbour_accuracy():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 50, (3, 2, 4, 4))
    y = np.repeat(np.arange(3), 4)
    train = centres[y] + rng.normal(0, 1, (12, 2, 4, 4))
    test = centres[y] + rng.normal(0, 1, (12, 2, 4, 4))
    assert nearest_neighbour_accuracy(train, y, test, y) == 1.0
    assert nearest_neighbour_accuracy(train, y, test, (y + 1) % 3) == 0.0
    assert nearest_neighbour_accuracy(train, y, test[:5], y[:5], chunk=2) == 1.0
    with pytest.raises(ValueError):
        nearest_neighbour_accuracy(train, y, test[:, :1], y)
