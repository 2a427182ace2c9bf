"""Publishing: Hub-ready dataset folders (folder.py), their cards (card.py) and ``push`` (push.py).

Needs the ``hub`` extra (``pip install -e '.[hub]'`` from the clone): huggingface_hub, datasets, pyyaml.
"""

from __future__ import annotations

from .folder import FolderResult, build_folder
from .push import PushResult, push

__all__ = ["FolderResult", "PushResult", "build_folder", "push"]
