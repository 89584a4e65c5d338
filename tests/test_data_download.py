"""data_scripts/download_*.py against a local HTTP server (never the internet)."""
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from tinyface.data import load_dataset
from tinyface.data.download import DownloadError, download

from test_data_helpers import make_lfw_tree, make_orl_tree, make_tgz, make_zip, truncate

REPO = Path(__file__).resolve().parents[1]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serve a folder with a tiny lfw.tgz and att_faces.zip on 127.0.0.1:<free port>."""
    root = tmp_path_factory.mktemp("www")
    src = tmp_path_factory.mktemp("src")
    make_tgz(make_lfw_tree(src, corrupt=False, empty=False), root / "lfw.tgz")
    make_zip(make_orl_tree(src / "att_faces", subjects=2, images=3), root / "att_faces.zip")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            partial(_Quiet, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_script(name, *args):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["no_proxy"] = "*"
    return subprocess.run([sys.executable, str(REPO / "data_scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def test_download_lfw_with_progress_and_checksum(server, tmp_path):
    url, root = server
    r = run_script("download_lfw.py", "--url", f"{url}/lfw.tgz", "--md5", md5(root / "lfw.tgz"),
                   "--out", tmp_path, "--seed", 3)
    assert r.returncode == 0, r.stderr
    assert "lfw.tgz [" in r.stderr and "MB" in r.stderr           # progress bar
    assert md5(tmp_path / "lfw.tgz") == md5(root / "lfw.tgz")
    assert not list(tmp_path.glob("*.part"))
    ds = load_dataset("lfw", root=tmp_path, hr_size=16, cache_dir=False)
    assert ds.n_identities == 4 and len(ds) == 10


def test_checksum_mismatch_is_one_line(server, tmp_path):
    url, _ = server
    r = run_script("download_lfw.py", "--url", f"{url}/lfw.tgz", "--md5", "0" * 32,
                   "--out", tmp_path, "--no-progress")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: md5 checksum mismatch")
    assert not (tmp_path / "lfw.tgz").exists() and not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("path", ["closed", "missing"])
def test_unreachable_or_missing_is_one_line(server, tmp_path, path):
    url, _ = server
    target = (f"http://127.0.0.1:{_closed_port()}/lfw.tgz" if path == "closed"
              else f"{url}/no-such-file.tgz")
    r = run_script("download_lfw.py", "--url", target, "--out", tmp_path, "--timeout", 5)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot download")
    assert ("404" in lines[0]) if path == "missing" else ("refused" in lines[0].lower())


def test_download_orl_zip_is_extracted_and_loadable(server, tmp_path):
    url, root = server
    r = run_script("download_orl.py", "--url", f"{url}/att_faces.zip", "--out", tmp_path,
                   "--sha256", hashlib.sha256((root / "att_faces.zip").read_bytes()).hexdigest())
    assert r.returncode == 0, r.stderr
    ds = load_dataset("orl", root=tmp_path, hr_size=16, cache_dir=False)
    assert ds.n_identities == 2 and len(ds) == 6


def test_local_archive_and_truncated_archive(server, tmp_path):
    _, root = server
    before = md5(root / "att_faces.zip")
    r = run_script("download_orl.py", "--archive", root / "att_faces.zip", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "att_faces" / "s2" / "3.pgm").is_file()
    assert md5(root / "att_faces.zip") == before                    # source untouched
    bad = tmp_path / "bad.tgz"
    bad.write_bytes((root / "lfw.tgz").read_bytes())
    truncate(bad, 0.5)
    r = run_script("download_lfw.py", "--archive", bad, "--out", tmp_path / "p", "--extract")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "truncated or corrupt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_script("download_lfw.py", "--archive", tmp_path / "nothing.tgz", "--out", tmp_path)
    assert r.returncode == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_download_function_in_process(server, tmp_path, capsys):
    url, root = server
    out = download(f"{url}/lfw.tgz", tmp_path / "x.tgz", md5=md5(root / "lfw.tgz"))
    assert out.is_file() and "x.tgz [" in capsys.readouterr().err
    with pytest.raises(DownloadError, match="sha256 checksum mismatch"):
        download(f"{url}/lfw.tgz", tmp_path / "y.tgz", sha256="ab", progress=False)
    assert not (tmp_path / "y.tgz").exists()
