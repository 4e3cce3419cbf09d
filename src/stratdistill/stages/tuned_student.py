"""What evaluation needs to know of the tuned student: where its weights are, and its content key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from stratdistill.artifacts import Artifact


@dataclass(frozen=True)
class TunedStudent:
    """What the tuned student is: a LoRA adapter or fully fine-tuned weights, and its content key."""

    key: str
    adapter: Path | None = None
    weights: Path | None = None
    quantize_4bit: bool = False

    @staticmethod
    def from_artifact(art: Artifact, method: str) -> TunedStudent:
        if method == "full":
            return TunedStudent(art.key, weights=art.path / "model")
        return TunedStudent(art.key, adapter=art.path / "adapter", quantize_4bit=method == "qlora")

    @staticmethod
    def from_folder(path: str) -> TunedStudent:
        """An existing PEFT adapter (``eval.adapter``), keyed by the hash of its files."""
        folder = Path(path).resolve()
        digest = hashlib.sha256()
        for f in sorted(folder.glob("adapter_*")):
            digest.update(f.name.encode() + f.read_bytes())
        return TunedStudent(digest.hexdigest()[:16], adapter=folder)
