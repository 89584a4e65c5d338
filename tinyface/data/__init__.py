"""Face data: datasets, degradation HR -> LR, augmentation, protocols.

Every dataset is a :class:`Dataset`: images (N, 3, H, W) uint8, labels (N,) int64,
identity names. Entry point::

    from tinyface.data import load_dataset, degrade
    ds = load_dataset("synthetic", n_identities=100, images_per_identity=20, seed=0)
    lr = degrade(ds.images, lr_size=16)                      # (N, 3, 16, 16) uint8

Modules: ``dataset`` (container, errors, data root), ``synthetic`` (+ ``synth_params``,
``synth_render``), ``orl``, ``lfw``, ``folder``, ``pairs``, ``protocols``, ``cache``,
``degrade``, ``augment``, ``montage``, ``download``, ``prepare``, ``probe``.
"""
from .augment import augment, iterate_minibatches, to_float, to_uint8
from .cache import default_cache_dir
from .dataset import Dataset, DataError, DataWarning, default_data_root, format_summary
from .degrade import LR_SIZES, antialias_sigma, degrade, jpeg_compress, upsample
from .folder import load_folder
from .lfw import find_pairs_file, load_lfw
from .load import DATASETS, load_dataset
from .lowres import detail_energy_kept, nearest_neighbour_accuracy, radial_power_spectrum
from .montage import montage, pick_faces
from .orl import load_orl, read_pgm
from .pairs import load_pairs, parse_pairs, resolve_pairs
from .probe import resolution_gap
from .protocols import (VerificationSplit, carve_validation, identification_split, split_datasets,
                        split_from_meta, validation_rows, verification_split)
from .synthetic import generate_synthetic
from .split import STREAMS, FaceSplit, load_split, split_of, stream_images

__all__ = ["Dataset", "DataError", "DataWarning", "default_data_root", "default_cache_dir",
           "format_summary", "load_dataset", "DATASETS", "generate_synthetic", "load_orl",
           "read_pgm", "load_lfw", "find_pairs_file", "load_folder", "load_pairs",
           "parse_pairs", "resolve_pairs", "identification_split", "verification_split",
           "carve_validation", "validation_rows", "split_from_meta", "split_datasets",
           "FaceSplit", "load_split", "split_of", "stream_images", "STREAMS", "VerificationSplit", "degrade", "antialias_sigma",
           "jpeg_compress", "upsample", "LR_SIZES", "augment", "iterate_minibatches",
           "to_float", "to_uint8", "montage", "pick_faces"]
__all__ += ["detail_energy_kept", "nearest_neighbour_accuracy", "radial_power_spectrum",
            "resolution_gap"]
