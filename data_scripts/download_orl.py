#!/usr/bin/env python
"""Download the ORL / AT&T faces archive (zip or tar) and unpack it under --out.

    python data_scripts/download_orl.py [--out DIR] [--url URL] [--md5 HEX]
    python data_scripts/download_orl.py --archive /path/to/att_faces.zip --out DIR

The AT&T archive has moved several times and has no stable home: the default URL
may be gone, so --url or a local --archive (``att_faces.zip``, ``.tar``, ``.tar.gz``)
is the reliable way. Offline or on any failure it prints one line and exits with 1.
"""
import sys

from tinyface.data.download import script_main

if __name__ == "__main__":
    sys.exit(script_main("orl"))
