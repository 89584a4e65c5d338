#!/usr/bin/env python
"""Build the cached HR and LR arrays of a dataset and print a summary.

    python data_scripts/prepare.py --data lfw --data-root ../shared/data
    python data_scripts/prepare.py --data synthetic --lr-sizes 8,16

Same as ``python -m tinyface data prepare`` (see --help for every option).
"""
import sys

from tinyface.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare"] + sys.argv[1:]))
