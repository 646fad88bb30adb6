"""Prioritiser: spend volunteer clicks where they teach the model most.

Importing ``prioritiser`` loads only the array-level API (acquisition and selection: numpy, with
numba kernels; BALD, EPIG and the baselines; top-k, power and diverse batches). The service lives
in submodules that load torch on import: ``prioritiser.scoring``, ``prioritiser.ensemble``,
``prioritiser.daemon``, ``prioritiser.demo``.
"""

from prioritiser.acquisition import (
    asked_probability,
    bald,
    combined_score,
    entropy,
    epig,
    get_acquisition,
    list_acquisitions,
    mutual_information,
    predictive_entropy,
    question_mutual_information,
    question_variation_ratio,
    random_score,
    variation_ratio,
)
from prioritiser.diversity import select_diverse
from prioritiser.errors import (
    AcquisitionInputError,
    ConfigError,
    DaemonLockedError,
    PrioritiserError,
    SelectionError,
    UnknownAcquisitionError,
)
from prioritiser.selection import (
    ACTIVE_PRIORITY,
    RANDOM_SELECTION,
    select_batch,
    select_power,
    select_top_k,
)

__all__ = [
    "ACTIVE_PRIORITY",
    "RANDOM_SELECTION",
    "AcquisitionInputError",
    "ConfigError",
    "DaemonLockedError",
    "PrioritiserError",
    "SelectionError",
    "UnknownAcquisitionError",
    "asked_probability",
    "bald",
    "combined_score",
    "entropy",
    "epig",
    "get_acquisition",
    "list_acquisitions",
    "mutual_information",
    "predictive_entropy",
    "question_mutual_information",
    "question_variation_ratio",
    "random_score",
    "select_batch",
    "select_diverse",
    "select_power",
    "select_top_k",
    "variation_ratio",
]
