"""The project's images as `make images` (images/build.sh) builds them from this working tree."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parents[2]


def image_ref(name: str) -> str:
    """The reference images/build.sh gives image NAME for the current tree (builds nothing)."""
    out = subprocess.run(
        [str(ROOT / "images" / "build.sh"), "ref", name], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


# What the operator under test puts in its pods; real pods run it (make images loads it).
SERVER_IMAGE: Final = image_ref("server")
