"""The stand-in teacher reproduces the paper's published teacher behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratdistill.parsing import parse_action, parse_donation
from stratdistill.reference import paper_counts
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers.reference import ReferenceTeacher, cooperation_probability, fitted_model

LIB = load_library()
PUBLISHED = paper_counts()


def _scenario(key: str):
    ctx, game = key.split("_", 1)
    return grid(LIB, [ctx], [game], "x")[0]


@pytest.mark.parametrize("key", list(PUBLISHED.index))
def test_published_scenarios_are_sampled_at_the_published_rate(key: str) -> None:
    row = PUBLISHED.loc[key]
    p = row["teacher_c"] / row["teacher_n"]
    n = 2000
    answers = ReferenceTeacher().sample(_scenario(key), [], "action_only", n, np.random.default_rng(7), 0.8)
    share = sum(parse_action(a).value == "C" for a in answers) / n
    se = math.sqrt(max(p * (1 - p), 1e-4) / n)
    assert abs(share - p) < 4 * se + 1e-9, f"{key}: {share:.3f} vs published {p:.3f}"


def test_motivated_answers_parse_to_the_sampled_action_in_the_papers_format() -> None:
    sc = _scenario("biz_prison")
    answers = ReferenceTeacher().sample(sc, [], "action_motivation", 200, np.random.default_rng(0), 0.8)
    parsed = [parse_action(a) for a in answers]
    assert all(p.ok for p in parsed)
    assert all(
        a.startswith(f"I would choose strategy {p.value}.\n\n") for a, p in zip(answers, parsed, strict=True)
    )
    assert len(set(answers)) > 100  # varied wording


def test_sampling_is_seeded() -> None:
    sc = _scenario("team_staghunt")
    t = ReferenceTeacher()
    assert t.sample(sc, [], "action_motivation", 30, np.random.default_rng(3), 0.8) == t.sample(
        sc, [], "action_motivation", 30, np.random.default_rng(3), 0.8
    )


def test_fitted_model_orders_games_and_contexts_sensibly() -> None:
    model = fitted_model()
    # defecting incentives lower cooperation
    assert model.b_greed < 0 and model.b_fear < 0
    # friends and teams are the prosocial contexts in the paper, sports the least
    assert model.alpha["friendsharing"] > model.alpha["biz"] > model.alpha["sports"]
    # the model is scale-free: a doubled game gets its original's rate from it, and a game with less
    # temptation to defect gets more C
    doubled, original = LIB.games["prison_d"], LIB.games["prison"]
    assert model.p_cooperate(doubled, "IR") == pytest.approx(model.p_cooperate(original, "IR"))
    assert 0 < model.p_cooperate(original, "IR") < model.p_cooperate(LIB.games["delight"], "IR") < 1


def test_doubled_games_use_their_published_rates_not_the_scale_free_model() -> None:
    """The published teacher defects far more when payoffs double (team_prison 200 -> 67 of 300); a
    stand-in that answered prison_d like prison would make the doubled split in-sample in disguise."""
    assert cooperation_probability(_scenario("team_prison_d")) == pytest.approx(67 / 300)
    assert cooperation_probability(_scenario("team_prison")) == pytest.approx(200 / 300)
    assert cooperation_probability(_scenario("biz_snowdrift_d")) == 0.0


def test_unknown_context_uses_its_prosociality_or_the_mean(tmp_path) -> None:
    (tmp_path / "contexts").mkdir()
    (tmp_path / "contexts" / "saints.yaml").write_text(
        "key: saints\ntext: Two saints meet.\nprosociality: 4\n"
    )
    (tmp_path / "contexts" / "plain.yaml").write_text("key: plain\ntext: Two people meet.\n")
    lib = load_library([str(tmp_path)])
    saints, plain = (grid(lib, [c], ["prison"], "x")[0] for c in ("saints", "plain"))
    assert cooperation_probability(saints) > 0.9
    assert 0.05 < cooperation_probability(plain) < 0.95


def test_temperature_sharpens_or_flattens_around_the_published_rate() -> None:
    sc = _scenario("IR_prison")  # published 77/300: mostly D
    cold, paper, hot = (cooperation_probability(sc, t) for t in (0.2, 0.8, 2.0))
    assert cold < paper < hot < 0.5
    assert cooperation_probability(sc, 0.0) == 0.0


def test_donation_game_as_published() -> None:
    (sc,) = grid(LIB, [], ["donation"], "x")
    answers = ReferenceTeacher().sample(sc, [], "action_motivation", 50, np.random.default_rng(1), 0.8)
    assert {parse_donation(a).value for a in answers} == {7}
    assert all(a.startswith("I would donate $7.") for a in answers)
