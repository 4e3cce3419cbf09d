"""Agreement at the paper's decoding, at small size (bench/agreement.py runs it at full size): the
forced-choice estimate against the answers a base and a "tuned" student give when sampled."""

from __future__ import annotations

import math

import pytest

from conftest import compose_cfg, perturbed_lora
from stratdistill.agreement import agreement, wilson
from stratdistill.scenarios import grid, load_library

pytestmark = pytest.mark.slow
LIB = load_library()


@pytest.fixture(scope="module")
def tuned(student_model):
    """A student whose LoRA moved it (random, non-zero B): another model to measure, no training needed."""
    model, tok = student_model
    peft_model = perturbed_lora(model)
    peft_model.eval()
    return peft_model, tok


@pytest.mark.parametrize("which", ["base", "tuned"])
def test_agreement_at_the_papers_decoding(student_model, tuned, which: str) -> None:
    model, tok = student_model if which == "base" else tuned
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    r = agreement(
        model, tok, sc, LIB, compose_cfg().eval, free_samples=24, opening_samples=200, max_new_tokens=16
    )
    # the estimator's own check: after the opening, the sampled share matches the forced choice
    assert r["opening_valid"] > 150 and abs(r["opening_z"]) < 4, r
    # the free answers are parsed and compared, with an interval, whatever they say
    assert r["free_n"] == 24 and 0 <= r["free_parse_rate"] <= 1
    if r["free_parsed"]:
        assert r["free_low"] <= r["free_p_c"] <= r["free_high"]
        assert r["free_minus_forced"] == pytest.approx(r["free_p_c"] - r["forced_choice"])


def test_wilson_interval() -> None:
    low, high = wilson(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-3) and high == pytest.approx(0.8922, abs=1e-3)
    assert all(math.isnan(x) for x in wilson(0, 0))
