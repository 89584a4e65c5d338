"""Image files as users really have them: 16-bit PNG/TIFF, phone JPEGs with an EXIF
orientation, broken symbolic links, corrupt files; and the checks of ``hr_size`` and
of the ``data`` command's options.

Everything is a few tiny pictures written under pytest's tmp_path.
"""
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface.data.load as load_mod
from tinyface.cli import main
from tinyface.data import DataError, load_dataset, load_folder
from tinyface.data.cache import source_signature
from tinyface.data.dataset import check_hr_size
from tinyface.data.lfw import decode_lfw
from tinyface.data.sources import decode_square, image_to_square

from test_data_helpers import face_like, write_jpeg

HR = 16


def _caught(fn, *args, **kwargs):
    """(result, [warning messages]) of ``fn(*args, **kwargs)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def _tree(root, people=("Ann", "Ben"), n=2, size=(20, 20)):
    """``root/<name>/<name>_NNNN.jpg``: a small readable folder dataset."""
    root = Path(root)
    for k, name in enumerate(people):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            write_jpeg(root / name / f"{name}_{i:04d}.jpg", face_like(*size, 10 * k + i))
    return root


def _png_rgb16(path, rgb16):
    """A 48-bit (16 bits per channel) RGB PNG of (h, w, 3) uint16, written by hand
    (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- 1. 16-bit images -------------------------------------------------------------------

@pytest.mark.parametrize("dtype, fmt, ext", [(np.uint16, "PNG", "png"),     # mode I;16
                                             (">u2", "TIFF", "tif"),        # mode I;16B
                                             (np.int32, "TIFF", "tif")])    # mode I
def test_16bit_grey_decodes_like_its_8bit_version(tmp_path, dtype, fmt, ext):
    grey8 = face_like(24, 20, 3, grey=True)                               # (20, 24) uint8
    p8, p16 = tmp_path / "g8.png", tmp_path / f"g16.{ext}"
    Image.fromarray(grey8).save(p8)
    Image.fromarray((grey8.astype(np.int64) * 257).astype(dtype)).save(p16, format=fmt)
    assert Image.open(p16).mode in ("I;16", "I;16B", "I")
    a = decode_square(p8.read_bytes(), HR)                                # (3, 16, 16) uint8
    b = decode_square(p16.read_bytes(), HR)
    assert b.dtype == np.uint8 and b.shape == (3, HR, HR)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert b.min() < 200                                                  # not a white square


def test_16bit_in_memory_modes_and_full_scale():
    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16)                 # (16, 16)
    for dtype in (np.uint16, ">u2", np.int32):
        im = Image.fromarray(ramp.round().astype(dtype))
        out = image_to_square(im, 16)                                     # (3, 16, 16)
        want = np.clip(np.rint(ramp / 257), 0, 255)
        assert np.abs(out[0].astype(int) - want).max() <= 1, im.mode
        assert out[0].max() == 255 and out[0].min() == 0


def test_16bit_rgb_png_and_folder_of_16bit_files(tmp_path):
    rgb8 = face_like(20, 20, 5)                                           # (20, 20, 3) uint8
    (tmp_path / "faces" / "Ann").mkdir(parents=True)
    (tmp_path / "faces" / "Ben").mkdir()
    _png_rgb16(tmp_path / "faces" / "Ann" / "a.png", rgb8.astype(np.uint16) * 257)
    grey8 = rgb8.mean(-1).astype(np.uint8)
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "faces" / "Ben" / "b.png")
    ds = load_folder(tmp_path / "faces", hr_size=20)
    assert len(ds) == 2 and not ds.skipped
    assert np.abs(ds.images[0].transpose(1, 2, 0).astype(int) - rgb8).max() <= 1
    assert np.abs(ds.images[1, 0].astype(int) - grey8).max() <= 1


# --- 2. EXIF orientation ----------------------------------------------------------------

def _asymmetric(w=24, h=16):
    """(h, w, 3) uint8: red grows to the right, green downwards; JPEG keeps it smooth."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([255 * xx / (w - 1), 255 * yy / (h - 1), np.full((h, w), 60.0)], -1)
    return img.round().astype(np.uint8)


@pytest.mark.parametrize("orientation, k", [(6, -1), (8, 1), (3, 2)])   # np.rot90 turns
@pytest.mark.parametrize("decode", [lambda d, s: decode_square(d, s),
                                    lambda d, s: decode_lfw(d, s, 1.0)], ids=["square", "lfw"])
def test_exif_orientation_is_applied_before_cropping(tmp_path, orientation, k, decode):
    img = _asymmetric()                                                   # (16, 24, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    Image.fromarray(img).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    got = decode(path.read_bytes(), HR).astype(int)                       # (3, 16, 16)
    upright = image_to_square(Image.fromarray(np.ascontiguousarray(np.rot90(img, k))), HR)
    stored = image_to_square(Image.fromarray(img), HR)
    assert np.abs(got - upright).mean() < 6
    assert np.abs(got - stored).mean() > 30


# --- 3. broken symbolic links -----------------------------------------------------------

def _with_broken_links(tmp_path):
    root = _tree(tmp_path / "faces")
    link = root / "Ann" / "Ann_0003.jpg"
    os.symlink(tmp_path / "gone.jpg", link)
    os.symlink(tmp_path / "gone.txt", root / "NOTES")                     # not an image
    return root, link


@pytest.mark.parametrize("cache", [False, True])
def test_broken_symlink_is_skipped_with_one_warning(tmp_path, cache):
    root, link = _with_broken_links(tmp_path)
    cache_dir = tmp_path / "cache" if cache else False
    ds, msgs = _caught(load_dataset, "folder", root=root, hr_size=HR, cache_dir=cache_dir)
    assert len(ds) == 4 and ds.names == ["Ann", "Ben"]
    assert ds.skipped == [f"{root}/Ann/Ann_0003.jpg"]
    named = [m for m in msgs if "Ann_0003.jpg" in m and "total" not in m]
    assert len([m for m in named if "skipped corrupt" in m]) == 1, msgs
    assert "broken symbolic link" in named[0] and str(link) in named[0]
    if cache:                                                # a cache hit still names it
        again, msgs = _caught(load_dataset, "folder", root=root, hr_size=HR,
                              cache_dir=cache_dir)
        assert again.meta["from_cache"] and any("Ann_0003.jpg" in m for m in msgs)


def test_signature_survives_broken_links_and_sees_them_change(tmp_path):
    root, link = _with_broken_links(tmp_path)
    sig = source_signature(root)
    assert sig["files"] == 6
    link.unlink()
    os.symlink(tmp_path / "elsewhere.jpg", link)
    assert source_signature(root)["digest"] != sig["digest"]


# --- 4. messages about bad files name the file ------------------------------------------

def test_corrupt_file_messages_name_the_file_not_a_bytesio(tmp_path, capsys):
    root = _tree(tmp_path / "faces")
    bad = root / "Ben" / "Ben_0003.jpg"
    bad.write_bytes(b"this is not an image at all")
    cut = root / "Ann" / "Ann_0003.png"
    Image.fromarray(face_like(20, 20, 9)).save(cut)
    cut.write_bytes(cut.read_bytes()[:60])
    ds, msgs = _caught(load_folder, root, hr_size=HR)
    assert len(ds) == 4 and len(ds.skipped) == 2
    assert not any("BytesIO" in m for m in msgs), msgs
    assert f"skipped corrupt or unreadable image {bad}: not an image Pillow can read" in msgs
    assert any(str(cut) in m for m in msgs)
    with pytest.raises(ValueError, match="^not an image Pillow can read$"):
        decode_square(b"garbage", HR)
    assert main(["data", "info", "--data", "folder", "--data-root", str(root),
                 "--hr-size", str(HR), "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert str(bad) in err and "BytesIO" not in err


# --- 5. hr_size is checked before anything is read --------------------------------------

@pytest.mark.parametrize("bad", [0, -3, 7, 1025, 100000, 16.5, "32", True])
def test_bad_hr_size_is_refused_before_anything_is_read(tmp_path, monkeypatch, bad):
    def never(*args, **kwargs):           # and never allocates a 100000 px face either
        raise AssertionError("data was read before hr_size was checked")
    for fn in ("generate_synthetic", "load_folder", "source_signature"):
        monkeypatch.setattr(load_mod, fn, never)
    root = _tree(tmp_path / "faces", n=1)
    for name in ("folder", "synthetic"):
        with pytest.raises(DataError, match=r"^hr_size .*integer from 8 to 1024 pixels, got"):
            load_dataset(name, root=root, hr_size=bad, cache_dir=False)


@pytest.mark.parametrize("bad", [0, -3, 7, 16.5])
def test_loaders_check_hr_size_too(tmp_path, bad):
    root = _tree(tmp_path / "faces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # no "corrupt" warnings
        with pytest.raises(DataError, match="^hr_size"):
            load_folder(root, hr_size=bad)


def test_hr_size_bounds_and_cli_message(tmp_path, capsys):
    assert check_hr_size(8) == 8 and check_hr_size(np.int64(1024)) == 1024
    root = _tree(tmp_path / "faces")
    assert len(load_dataset("folder", root=root, hr_size=8, cache_dir=False)) == 4
    assert main(["data", "info", "--data", "folder", "--data-root", str(root),
                 "--hr-size", "0", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: hr_size (--hr-size) must be an integer from 8 to 1024 "
                           "pixels, got 0")


# --- 6. data --identities, with --n-identities kept as an alias -------------------------

def test_data_identities_option_and_its_alias(capsys):
    for opt in ("--identities", "--n-identities"):
        assert main(["data", "info", opt, "3", "--images-per-identity", "2",
                     "--hr-size", str(HR)]) == 0
        out = capsys.readouterr().out
        assert "identities:  3" in out and "images:      6" in out
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--help"])
    assert "--identities N, --n-identities N" in capsys.readouterr().out
