#!/usr/bin/env python
"""Fetch dlib's pretrained face ResNet (the teacher) as face-api.js ships it.

    python data_scripts/download_teacher.py                        # npm pack, into the cache
    python data_scripts/download_teacher.py --archive vladmandic-face-api-1.7.15.tgz --out DIR

Runs ``npm pack @vladmandic/face-api@1.7.15`` in a temporary folder (or takes --archive),
checks the sha256 of the tarball and of the two model files, and writes only
``face_recognition_model-weights_manifest.json`` and ``face_recognition_model.bin`` into --out
(default ``<cache dir>/dlib_resnet``, where ``tinyface.models.weights.find_weights_dir()``
looks last). Offline or on any failure it prints one line ``error: ...`` and exits with 2,
leaving nothing in --out.
"""
import sys

from tinyface.data.download import teacher_main

if __name__ == "__main__":
    sys.exit(teacher_main())
