"""data_scripts/download_teacher.py (tinyface.data.download.fetch_teacher / teacher_main).

Fake face-api tarballs built in tmp_path (with the expected checksums monkeypatched to
theirs) and a fake ``npm`` on PATH: nothing here touches the network or /tmp's real tarball.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tinyface.data.dataset import default_data_root
from tinyface.data.download import teacher_main
from tinyface.models import weights as W
from tinyface.models.weights import DLIB_FILES, find_weights_dir, read_manifest_weights

from test_weights_files import write_weights

REPO = Path(__file__).resolve().parents[1]
MANIFEST, BINARY = DLIB_FILES["manifest"], DLIB_FILES["binary"]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_tarball(src, out, names=(MANIFEST, BINARY), extra=True):
    """An npm-like tarball: package/model/<names> from ``src`` (+ a package.json)."""
    with tarfile.open(out, "w:gz") as tf:
        if extra:
            blob = b'{"name": "@vladmandic/face-api"}'
            info = tarfile.TarInfo("package/package.json")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
        for n in names:
            tf.add(Path(src) / n, arcname=f"package/model/{n}")
    return Path(out)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake tarball whose checksums DLIB_FILES is patched to expect; returns (tgz, src)."""
    src = write_weights(tmp_path / "src")
    tgz = make_tarball(src, tmp_path / DLIB_FILES["tarball"])
    monkeypatch.setitem(DLIB_FILES, "manifest_sha256", sha256(src / MANIFEST))
    monkeypatch.setitem(DLIB_FILES, "binary_sha256", sha256(src / BINARY))
    monkeypatch.setitem(DLIB_FILES, "binary_size", (src / BINARY).stat().st_size)
    monkeypatch.setitem(DLIB_FILES, "tarball_sha256", sha256(tgz))
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))
    return tgz, src


def one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def assert_empty(folder):
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def test_archive_is_extracted_and_verified(fake, tmp_path, capsys):
    tgz, src = fake
    out = tmp_path / "out"
    assert teacher_main(["--archive", str(tgz), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, BINARY])  # only these
    for n in (MANIFEST, BINARY):
        assert (out / n).read_bytes() == (src / n).read_bytes()
    assert str(out) in cap.out and "find_weights_dir" in cap.out
    assert list(read_manifest_weights(find_weights_dir(out))) == ["block/conv/filters",
                                                                   "block/conv/bias", "fc"]


def test_default_out_is_the_cache_where_the_code_looks(fake, tmp_path, capsys, monkeypatch):
    tgz, _ = fake
    assert teacher_main(["--archive", str(tgz)]) == 0
    folder = tmp_path / "cache" / "dlib_resnet"
    assert (folder / BINARY).is_file()
    assert "finds them there" in capsys.readouterr().out
    monkeypatch.setattr(W, "default_data_root", lambda: None)
    assert find_weights_dir() == folder


def _truncated(tgz, src, tmp_path):
    data = tgz.read_bytes()
    tgz.write_bytes(data[: len(data) // 2])
    return "truncated or corrupt"


def _not_gzip(tgz, src, tmp_path):
    tgz.write_bytes(b"this is not a tarball at all" * 10)
    return "truncated or corrupt"


def _other_bytes(tgz, src, tmp_path):
    (src / BINARY).write_bytes(b"\x07" * (src / BINARY).stat().st_size)
    make_tarball(src, tgz)                    # tarball and binary checksums both differ
    return "sha256"


def _no_binary(tgz, src, tmp_path):
    make_tarball(src, tgz, names=(MANIFEST,))
    return "has no package/model/" + BINARY


def _missing(tgz, src, tmp_path):
    tgz.unlink()
    return "does not exist"


@pytest.mark.parametrize("spoil", [_truncated, _not_gzip, _other_bytes, _no_binary, _missing])
def test_bad_archive_exits_2_with_one_line_and_writes_nothing(fake, tmp_path, capsys, spoil):
    tgz, src = fake
    what = spoil(tgz, src, tmp_path)
    out = tmp_path / "out"
    assert teacher_main(["--archive", str(tgz), "--out", str(out)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert what in line and str(tgz.name) in line
    assert_empty(out)


def test_repacked_archive_is_accepted_when_both_files_match(fake, tmp_path, capsys):
    tgz, src = fake
    make_tarball(src, tgz, extra=False)                   # other tarball bytes, same two files
    out = tmp_path / "out"
    assert teacher_main(["--archive", str(tgz), "--out", str(out)]) == 0
    assert "accepted because both model files match" in capsys.readouterr().err
    assert (out / BINARY).read_bytes() == (src / BINARY).read_bytes()


def test_npm_missing_and_no_archive(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    out = tmp_path / "out"
    assert teacher_main(["--out", str(out)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "npm is not on PATH" in line and "--archive PATH" in line and "TINYFACE_DATA" in line
    assert_empty(out)


def fake_npm(bindir, tgz=None, fail=False):
    """An ``npm`` executable that 'packs' ``tgz`` into its cwd, or fails as npm does offline."""
    bindir.mkdir(exist_ok=True)
    if fail:
        body = ("import sys\nsys.stderr.write('npm error code ENOTFOUND\\n"
                "npm error network request to https://registry.npmjs.org/ failed\\n')\n"
                "sys.exit(1)\n")
    else:
        spec = DLIB_FILES["npm_package"]
        body = (f"import shutil, sys\nassert sys.argv[1:3] == ['pack', {spec!r}]\n"
                f"shutil.copy({str(tgz)!r}, {DLIB_FILES['tarball']!r})\n"
                f"print({DLIB_FILES['tarball']!r})\n")
    npm = bindir / "npm"
    npm.write_text(f"#!{sys.executable}\n{body}")
    npm.chmod(0o755)
    return npm


def test_npm_pack_path(fake, tmp_path, capsys, monkeypatch):
    tgz, src = fake
    fake_npm(tmp_path / "bin", tgz)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "out"
    assert teacher_main(["--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / MANIFEST).read_bytes() == (src / MANIFEST).read_bytes()


def test_npm_tarball_with_another_checksum_is_refused(fake, tmp_path, capsys, monkeypatch):
    tgz, _ = fake
    monkeypatch.setitem(DLIB_FILES, "tarball_sha256", "0" * 64)    # files match, tarball not
    fake_npm(tmp_path / "bin", tgz)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "out"
    assert teacher_main(["--out", str(out)]) == 2
    assert "refusing" in one_line_error(capsys.readouterr().err)
    assert_empty(out)


def test_npm_failing_offline(fake, tmp_path, capsys, monkeypatch):
    fake_npm(tmp_path / "bin", fail=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "out"
    assert teacher_main(["--out", str(out)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "npm pack failed" in line and "ENOTFOUND" in line and "--archive PATH" in line
    assert_empty(out)


def run_script(*args, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, str(REPO / "data_scripts" / "download_teacher.py"),
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=e, cwd=REPO)


def test_script_help_and_offline_exit(tmp_path):
    r = run_script("--help", TINYFACE_CACHE=str(tmp_path / "c"))
    assert r.returncode == 0
    assert "--archive" in r.stdout
    assert str(tmp_path / "c" / "dlib_resnet") in "".join(r.stdout.split())   # help wraps it
    r = run_script("--out", tmp_path / "out", PATH="")
    assert r.returncode == 2
    assert "npm is not on PATH" in one_line_error(r.stderr)
    assert_empty(tmp_path / "out")


def test_real_files_through_a_repacked_tarball(tmp_path, capsys):
    """dlib's files from shared/ in a tarball of our own: the real checksums are accepted."""
    root = default_data_root()
    src = root / "dlib_resnet" if root is not None else None
    if src is None or not (src / BINARY).is_file() or not (src / MANIFEST).is_file():
        pytest.skip("dlib's weights are not under default_data_root()/dlib_resnet")
    tgz = make_tarball(src, tmp_path / "repacked.tgz")
    out = tmp_path / "out"
    assert teacher_main(["--archive", str(tgz), "--out", str(out)]) == 0
    assert "accepted because both model files match" in capsys.readouterr().err
    assert sha256(out / BINARY) == DLIB_FILES["binary_sha256"]
    assert len(read_manifest_weights(out)) == 117
