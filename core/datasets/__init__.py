"""The gauntlets' public datasets: the catalogue (official sources, checksums, licences, citations), their
folder (``SM_DATASETS_DIR``), the error a missing one raises, and the verified download behind ``make datasets``."""

from core.datasets.catalogue import DATASETS, Dataset, Member, Source, select
from core.datasets.paths import (
    DATASETS_COMMAND,
    DatasetMissingError,
    dataset_path,
    datasets_root,
    missing_message,
    resolve_input,
)

__all__ = [
    "DATASETS",
    "DATASETS_COMMAND",
    "Dataset",
    "DatasetMissingError",
    "Member",
    "Source",
    "dataset_path",
    "datasets_root",
    "missing_message",
    "resolve_input",
    "select",
]
