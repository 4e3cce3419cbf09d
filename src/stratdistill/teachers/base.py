"""The one interface every teacher backend implements (stand-in, transformers, vLLM, OpenAI server).

Why a base class: the dataset code writes the teacher's name, backend, revision and stand-in flag into
every row, and the pipeline writes its description into the dataset's manifest. With one declared
interface those are plain attribute reads, not ``getattr`` probes with defaults that would silently
label a new backend wrongly.

Why the temperature is an argument of :meth:`Teacher.sample` and not of the constructor: loading a
real model is the expensive part (minutes for a 70B engine), and a temperature sweep needs the same
model at several temperatures. One loaded teacher (:func:`stratdistill.teachers.load_teacher`) then
serves every point of the sweep.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from stratdistill.scenarios import Scenario

# What ``sample`` takes besides the temperature: scenario, messages, instruction, n, the chunk's RNG.
Request = tuple[Scenario, list[dict[str, str]], str, int, np.random.Generator]


class Teacher(ABC):
    """Something that answers a scenario's prompt ``n`` times.

    Subclasses set ``backend`` (the ``teacher.backend`` value that builds them) and ``name``; the rest
    has defaults a real language model served without a pinned revision would have.
    """

    backend: ClassVar[str]
    # The offline stand-in is not a language model: every artifact and report says so.
    is_stand_in: ClassVar[bool] = False
    # Whether the teacher holds model weights in this process (GPU memory to free before the student
    # trains); a stand-in or a remote server holds none, so it can stay loaded between runs.
    holds_model: ClassVar[bool] = False
    # How many chunks one ``sample_many`` call should take (vLLM fills its batch with many).
    chunks_per_call: ClassVar[int] = 1
    name: str
    revision: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls) and not isinstance(getattr(cls, "backend", None), str):
            raise TypeError(f"{cls.__name__} must set `backend` to its teacher.backend value")

    @property
    @abstractmethod
    def description(self) -> str:
        """What the teacher is, in one sentence for the report (independent of the temperature)."""

    def describe(self, temperature: float) -> str:
        """The description for answers sampled at ``temperature`` (a backend that decodes greedily at
        temperature 0 says so here)."""
        return self.description

    @abstractmethod
    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt exactly as the model reads it (stored with every row)."""

    @abstractmethod
    def sample(
        self,
        scenario: Scenario,
        messages: list[dict[str, str]],
        instruction: str,
        n: int,
        rng: np.random.Generator,
        temperature: float,
    ) -> list[str]:
        """``n`` raw answers to one prompt at ``temperature``, drawing all randomness from ``rng``."""

    def sample_many(self, requests: list[Request], temperature: float) -> list[list[str]]:
        """The answers to several chunks, in order. One call per chunk unless the backend batches
        (``chunks_per_call`` > 1); either way each chunk draws only on its own RNG, so its answers are
        the same alone or batched."""
        return [self.sample(*request, temperature) for request in requests]
