#!/usr/bin/env python
"""Download LFW's ``lfw.tgz`` (or any --url) with a progress bar and an MD5 check.

    python data_scripts/download_lfw.py [--out DIR] [--url URL] [--md5 HEX]
    python data_scripts/download_lfw.py --archive /path/to/lfw.tgz --out DIR

The archive is kept as is (the loader reads it directly); --extract also unpacks it.
Offline or on any failure it prints one line ``error: ...`` and exits with 1.
"""
import sys

from tinyface.data.download import script_main

if __name__ == "__main__":
    sys.exit(script_main("lfw"))
