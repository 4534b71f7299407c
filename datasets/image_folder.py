"""open_image_folder: the image-folder source (a directory or a tarball) of one split."""
import os

from minwa.errors import MissingSplit


def open_image_folder(path, split, resize=None, split_folder=True):
    """A FolderSource (directory) or TarFolderSource (.tar/.tar.gz) of ``split`` under ``path``."""
    if os.path.isfile(path):
        from .tar_folder_source import TarFolderSource

        return TarFolderSource(path, split if split_folder else None, resize=resize)
    from .folder_source import FolderSource

    if not split_folder:
        return FolderSource(path, resize=resize)
    names = [split] + (["val"] if split == "test" else [])
    for name in names:
        candidate = os.path.join(path, name)
        if os.path.isdir(candidate):
            return FolderSource(candidate, resize=resize)
    tried = " or ".join(os.path.join(path, name) for name in names)
    raise MissingSplit(f"data.path: no {split} folder at {tried} (expected <path>/{split}/<class>/*.jpg; "
                    f"or set data.{split}_path)")
