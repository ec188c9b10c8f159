"""Names that other modules import from here: image sets live in image_set.py, decoding in
decode.py, layouts in listing.py."""

from comining.data.decode import ImageFiles, loader, usable_cpus
from comining.data.image_set import FolderData, is_folder_dataset

__all__ = ["FolderData", "ImageFiles", "is_folder_dataset", "loader", "usable_cpus"]
