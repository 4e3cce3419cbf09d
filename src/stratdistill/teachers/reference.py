"""The offline stand-in teacher, calibrated to the paper's published teacher behaviour.

Why it exists: the project must run end to end on a laptop with no network and no GPU, and a 70B
teacher is neither. The stand-in is labelled as such in every artifact and report.

How it behaves (the documented model):

* A scenario with published teacher figures (the 20 training, 12 held-out-context and 20 doubled-game
  scenarios) is answered C with the published share as its *expected* rate: each answer is a draw, so
  300 answers give Binomial(300, rate) C answers (IR_prison: 77/300 expected, about 77 ± 7 drawn).
* Any other 2x2 scenario (a user's own game or context) follows a logit response model fitted by
  maximum likelihood (small ridge penalty) to the 32 published cells of the original games::

      logit P(C) = alpha[context] + b_greed * greed + b_fear * fear
      greed = (T - R) / (max - min),  fear = (P - S) / (max - min)

  greed and fear are the two incentives to defect, normalised by the payoff range. The model is
  scale-free, so it cannot express what the published teacher does with doubled payoffs (0.15 less C
  on average); that is why the doubled cells use their published rates and stay out of the fit.
  ``alpha[context]`` is the fitted prosociality of a published context; a new context uses its YAML
  ``prosociality`` value when given, otherwise the mean of the fitted ones.
* Published rates are at the paper's temperature 0.8; at temperature t the logit is scaled by 0.8 / t
  (t = 0 answers the majority action deterministically).
* Public goods games: the published teacher donated $7 of $10 every time; another game gets
  round(0.7 x endowment).
* Motivations: composed to be consistent with the sampled action and the actual payoffs
  (:mod:`stratdistill.teachers.motivations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from stratdistill.prompts import render_plain
from stratdistill.reference import paper_counts, paper_donations
from stratdistill.scenarios import PublicGoodsGame, Scenario, TwoByTwoGame, load_library
from stratdistill.teachers.base import Teacher
from stratdistill.teachers.motivations import compose_donation_motivation, compose_motivation

PAPER_TEMPERATURE = 0.8
_EPS = 1e-4  # keeps published 0/300 cells finite under temperature scaling


def incentives(game: TwoByTwoGame) -> tuple[float, float]:
    """(greed, fear): the two temptations to defect, normalised by the payoff range."""
    span = max(game.payoffs.values()) - min(game.payoffs.values()) or 1.0
    return (game.T - game.R) / span, (game.P - game.S) / span


@dataclass(frozen=True)
class LogitResponseModel:
    alpha: dict[str, float]
    b_greed: float
    b_fear: float

    @property
    def default_alpha(self) -> float:
        return float(np.mean(list(self.alpha.values())))

    def p_cooperate(self, game: TwoByTwoGame, context_key: str, prosociality: float | None = None) -> float:
        if context_key in self.alpha:
            a = self.alpha[context_key]
        elif prosociality is not None:
            a = prosociality
        else:
            a = self.default_alpha
        greed, fear = incentives(game)
        return float(expit(a + self.b_greed * greed + self.b_fear * fear))


@cache
def fitted_model(ridge: float = 0.05) -> LogitResponseModel:
    """Fit the logit response model to the published teacher counts (deterministic, ~10 ms)."""
    df = paper_counts()
    df = df[df["split"] != "doubled_games"]  # see the module docstring
    lib = load_library()
    ctxs = sorted(df["context"].unique())
    x = np.array([incentives(lib.games[g]) for g in df["game"]])
    ci = np.array([ctxs.index(c) for c in df["context"]])
    k, n = df["teacher_c"].to_numpy(float), df["teacher_n"].to_numpy(float)

    def nll(theta: np.ndarray) -> float:
        z = theta[ci] + x @ theta[-2:]
        return float(np.sum(n * np.logaddexp(0, z) - k * z) + ridge * np.sum(theta**2))

    res = minimize(nll, np.zeros(len(ctxs) + 2), method="L-BFGS-B")
    theta = res.x
    return LogitResponseModel(
        dict(zip(ctxs, map(float, theta[:-2]), strict=True)), float(theta[-2]), float(theta[-1])
    )


def _published_rate(scenario_key: str) -> float | None:
    df = paper_counts()
    if scenario_key not in df.index:
        return None
    row = df.loc[scenario_key]
    return float(row["teacher_c"] / row["teacher_n"])


def cooperation_probability(scenario: Scenario, temperature: float = PAPER_TEMPERATURE) -> float:
    """The stand-in's probability of answering C in a 2x2 scenario at the given temperature."""
    game = scenario.game
    assert isinstance(game, TwoByTwoGame)
    p = _published_rate(scenario.key)
    if p is None:
        ctx = scenario.context
        p = fitted_model().p_cooperate(game, ctx.key if ctx else "", ctx.prosociality if ctx else None)
    if temperature == PAPER_TEMPERATURE:
        return p
    z = float(logit(np.clip(p, _EPS, 1 - _EPS)))
    if temperature == 0:
        return 1.0 if z > 0 else 0.0
    return float(expit(z * PAPER_TEMPERATURE / temperature))


def donation_distribution(game: PublicGoodsGame) -> dict[int, float]:
    """The stand-in's distribution over donated dollars."""
    if game.key == "donation" and game.endowment == 10:
        dist = paper_donations()["teacher"]
        total = sum(dist.values())
        return {k: v / total for k, v in dist.items()}
    return {round(0.7 * game.endowment): 1.0}


class ReferenceTeacher(Teacher):
    """Samples answers at the published rates (or the fitted model), with composed motivations."""

    backend = "reference"
    is_stand_in = True

    def __init__(self, name: str = "reference") -> None:
        self.name = name

    @property
    def description(self) -> str:
        return (
            "offline STAND-IN teacher (not a language model): draws C with the published LLaMa2-70b rate as "
            "its expected rate where the paper reports one, elsewhere from a logit response model fitted "
            "to those rates; its motivations are composed from templates"
        )

    def render(self, messages: list[dict[str, str]]) -> str:
        """The stand-in has no chat template: the messages in a plain, readable layout."""
        return render_plain(messages)

    def sample(
        self,
        scenario: Scenario,
        messages: list[dict[str, str]],
        instruction: str,
        n: int,
        rng: np.random.Generator,
        temperature: float,
    ) -> list[str]:
        """n raw answers for one scenario at ``temperature``, in the paper's answer format."""
        game = scenario.game
        with_reason = instruction == "action_motivation"
        if isinstance(game, PublicGoodsGame):
            dist = donation_distribution(game)
            amounts = rng.choice(list(dist), size=n, p=list(dist.values()))
            if not with_reason:
                return [str(int(a)) for a in amounts]
            return [
                compose_donation_motivation(
                    int(a),
                    endowment=game.endowment,
                    players=game.players,
                    multiplier=game.multiplier,
                    others=list(game.others),
                    rng=rng,
                )
                for a in amounts
            ]
        p = cooperation_probability(scenario, temperature)
        actions = np.where(rng.random(n) < p, "C", "D")
        if not with_reason:
            return [str(a) for a in actions]
        stake = scenario.context.stake if scenario.context else "points"
        return [compose_motivation(str(a), game.payoffs, rng, stake=stake) for a in actions]
