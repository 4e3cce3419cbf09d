"""The teacher's dataset: one row per sampled answer, and the training examples built from it.

Rows keep everything a reader needs to audit a sample: the scenario, the messages and the rendered
prompt, the raw answer, the parsed action (or donation) with its parse status, the motivation, and the
teacher, temperature, seed and sample index. Unparseable answers stay in the file with their status;
they are counted in the report and, by default, left out of training (``data.parse_failures``).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from stratdistill.artifacts import read_jsonl, write_jsonl
from stratdistill.errors import ConfigError
from stratdistill.parsing import parse_action, parse_donation, split_action_and_motivation
from stratdistill.prompts import messages_for
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario

if TYPE_CHECKING:
    from stratdistill.teachers.base import Teacher

SAMPLES_FILE = "samples.jsonl"
SCHEMA_VERSION = 1
CHUNK_SIZE = 50  # answers per resumable chunk of teacher generation


def scenario_rng(seed: int, scenario_key: str, purpose: str) -> np.random.Generator:
    """An RNG per (seed, scenario, purpose): adding a scenario never changes another's samples."""
    digest = int.from_bytes(hashlib.sha256(f"{purpose}/{scenario_key}".encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def scenario_spec(scenario: Scenario, library: Library, instruction: str) -> dict[str, Any]:
    """What of a scenario reaches the model: its key and the exact prompt messages."""
    return {"key": scenario.key, "messages": messages_for(scenario, instruction, library)}


def parse_answer(scenario: Scenario, raw: str):
    game = scenario.game
    if isinstance(game, PublicGoodsGame):
        return parse_donation(raw, endowment=game.endowment)
    return parse_action(raw)


def _answers_with_resamples(
    teacher: Teacher,
    sc: Scenario,
    msgs: list[dict[str, str]],
    instruction: str,
    n: int,
    rng: np.random.Generator,
    temperature: float,
    max_resamples: int,
    drawn: list[str] | None = None,
) -> list[tuple[str, list[str]]]:
    """n answers at ``temperature``, each unparseable one asked for again (same prompt) up to
    ``max_resamples`` times.

    ``drawn``: the first n answers when they were already asked for with ``rng`` (a batched call).
    Returns (final answer, earlier unparseable answers) per sample, so the dataset keeps every attempt.
    """
    if drawn is None:
        drawn = teacher.sample(sc, msgs, instruction, n, rng, temperature)
    answers: list[tuple[str, list[str]]] = [(raw, []) for raw in drawn]
    for _ in range(max_resamples):
        failed = [i for i, (raw, _) in enumerate(answers) if not parse_answer(sc, raw).ok]
        if not failed:
            break
        again = teacher.sample(sc, msgs, instruction, len(failed), rng, temperature)
        for i, raw in zip(failed, again, strict=True):
            answers[i] = (raw, [*answers[i][1], answers[i][0]])
    return answers


def _chunk_rows(
    teacher: Teacher,
    sc: Scenario,
    msgs: list[dict[str, str]],
    instruction: str,
    first: int,
    n: int,
    seed: int,
    temperature: float,
    rng: np.random.Generator,
    max_resamples: int = 0,
    drawn: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows for sample indices [first, first + n) of one scenario, with the chunk's own ``rng``.

    ``drawn``: the chunk's first answers, when a batched call already asked for them with ``rng``."""
    answers = _answers_with_resamples(
        teacher, sc, msgs, instruction, n, rng, temperature, max_resamples, drawn
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows = []
    for i, (raw, earlier) in enumerate(answers, start=first):
        parsed = parse_answer(sc, raw)
        _, motivation = split_action_and_motivation(raw)
        rows.append(
            {
                "scenario": sc.key,
                "context": sc.context_key,
                "game": sc.game.key,
                "messages": msgs,
                "prompt": teacher.render(msgs),
                "instruction": instruction,
                "raw": raw,
                "value": parsed.value,
                "parse_status": parsed.status,
                "motivation": motivation,
                "attempts": 1 + len(earlier),
                "unparsed_attempts": earlier,
                "teacher": teacher.name,
                "teacher_revision": teacher.revision,
                "teacher_is_stand_in": teacher.is_stand_in,
                "backend": teacher.backend,
                "temperature": temperature,
                "seed": seed,
                "sample_index": i,
                "created": stamp,
                "schema_version": SCHEMA_VERSION,
            }
        )
    return rows


def sample_teacher(
    teacher: Teacher,
    scenarios: list[Scenario],
    library: Library,
    instruction: str,
    n: int,
    seed: int,
    temperature: float,
    purpose: str,
    chunk_dir: Path | None = None,
    chunk_size: int = CHUNK_SIZE,
    max_resamples: int = 0,
) -> list[dict[str, Any]]:
    """n answers per scenario from ``teacher`` at ``temperature``, parsed, as dataset rows.

    Answers are produced in chunks of ``chunk_size`` whose randomness depends only on (seed, scenario,
    first index). With ``chunk_dir`` every finished chunk is written there atomically and chunks already
    there are read back instead of generated, so a generation killed at any moment resumes where it
    stopped and ends with the same rows as an uninterrupted run (timestamps aside), exactly n per
    scenario and none twice. ``max_resamples`` > 0 asks again for answers that do not parse
    (``data.parse_failures=resample``).

    The first answers of up to ``teacher.chunks_per_call`` chunks are asked for in one ``sample_many``
    call (vLLM's engine takes 32), so a large engine is not left idle by one 50-answer chunk at a time;
    the chunks are then finished (resamples) and written one by one, and each still draws only on its
    own RNG.
    """
    jobs = [(sc, first) for sc in scenarios for first in range(0, n, chunk_size)]
    paths = [None if chunk_dir is None else chunk_dir / f"{sc.key}.{first:06d}.jsonl" for sc, first in jobs]
    done = {i: read_jsonl(p) for i, p in enumerate(paths) if p is not None and p.is_file()}
    todo = [i for i in range(len(jobs)) if i not in done]
    per_call = max(1, teacher.chunks_per_call)
    desc = f"teacher {purpose} ({len(scenarios)} scenarios)"
    with tqdm(total=len(jobs), initial=len(done), desc=desc, unit="chunk") as bar:
        for start in range(0, len(todo), per_call):
            group = todo[start : start + per_call]
            asks = []
            for i in group:
                sc, first = jobs[i]
                msgs = messages_for(sc, instruction, library)
                rng = scenario_rng(seed, f"{sc.key}#{first}", purpose)  # depends only on the chunk
                asks.append((sc, msgs, instruction, min(chunk_size, n - first), rng))
            drawn = teacher.sample_many(asks, temperature)
            for i, (sc, msgs, _, size, rng), answers in zip(group, asks, drawn, strict=True):
                first = jobs[i][1]
                chunk = _chunk_rows(
                    teacher,
                    sc,
                    msgs,
                    instruction,
                    first,
                    size,
                    seed,
                    temperature,
                    rng,
                    max_resamples,
                    answers,
                )
                if paths[i] is not None:
                    write_jsonl(paths[i], chunk)
                done[i] = chunk
                bar.update()
    return [row for i in range(len(jobs)) for row in done[i]]


def write_samples(folder: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    write_jsonl(folder / SAMPLES_FILE, rows)
    status = Counter(r["parse_status"] for r in rows)
    return {"rows": len(rows), "parse_status": dict(status), "schema_version": SCHEMA_VERSION}


def load_samples(folder: Path) -> list[dict[str, Any]]:
    path = folder / SAMPLES_FILE
    if not path.is_file():
        raise ConfigError("dataset", str(path), "an existing dataset artifact (delete the folder to rebuild)")
    rows = read_jsonl(path)
    if not rows:
        raise ConfigError(
            "dataset", str(path), "a dataset with at least one row (delete the folder to rebuild)"
        )
    return rows


def _shuffled_motivations(picked: list[dict[str, Any]], seed: int) -> list[str]:
    """Each answer's motivation replaced by another answer's with the same game and the same action.

    Within a (game, action) group the motivations are permuted and then rotated by one, so no answer keeps
    its own when the group has two or more members; the numbers quoted still match the game's payoffs.
    """
    rng = np.random.default_rng([seed, 2024])
    groups: dict[tuple[str, Any], list[int]] = {}
    for i, r in enumerate(picked):
        groups.setdefault((r["game"], r["value"]), []).append(i)
    motivations = [split_action_and_motivation(r["raw"])[1] for r in picked]
    out = list(motivations)
    for idx in groups.values():
        order = [idx[j] for j in rng.permutation(len(idx))]
        for src, dst in zip(order, order[1:] + order[:1], strict=True):
            out[dst] = motivations[src]
    return out


def stratified_pick(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """k of one scenario's rows whose mix of values (C/D, or amounts) is the whole set's mix, rounded by
    largest remainders: each value's share among the k is within 1/k of its share among all rows (within
    1/(2k) for two values). Within a value the earliest rows are taken; the result keeps the rows' order.

    Why: the first 16 of 300 answers carry their own sampling noise (measured: their share of C was 0.084
    from the 300-answer share on average, up to 0.27), larger than the game effects the student is meant
    to learn. A stratified pick trains the text loss on the teacher's behaviour, not on a draw from it.
    """
    if k >= len(rows):
        return list(rows)
    by_value: dict[Any, list[int]] = {}
    for i, r in enumerate(rows):
        by_value.setdefault(str(r["value"]), []).append(i)
    exact = {v: k * len(ix) / len(rows) for v, ix in by_value.items()}
    quota = {v: int(q) for v, q in exact.items()}
    for v in sorted(exact, key=lambda v: (-(exact[v] - quota[v]), v))[: k - sum(quota.values())]:
        quota[v] += 1
    keep = sorted(i for v, ix in by_value.items() for i in ix[: quota[v]])
    return [rows[i] for i in keep]


def training_examples(
    rows: list[dict[str, Any]],
    motivations: bool,
    per_scenario: int | None,
    order: str = "action_first",
    shuffle_motivations: bool = False,
    seed: int = 0,
    parse_failures: str = "drop",
    subsample: str = "first",
) -> list[dict[str, Any]]:
    """Prompt/completion pairs for SFT from ``per_scenario`` usable answers of each scenario: the first
    ones (``subsample="first"``) or a pick with the teacher's mix of actions (``"stratified"``, see
    :func:`stratified_pick`).

    The data arms of the motivation ablation, all built from the same teacher answers:

    * ``motivations=False``: the decision sentence alone ("I would choose strategy C.");
    * ``order="action_first"``: decision, blank line, motivation (the paper's arm);
    * ``order="motivation_first"``: motivation, blank line, decision;
    * ``shuffle_motivations=True``: as above, but with another answer's motivation of the same game and
      action, a control for whether the reasoning's content matters or only its presence.

    Unparseable answers are left out, except with ``parse_failures="keep"``: then they are trained on
    verbatim (there is no decision to split off), as a teacher's real output distribution includes them.
    """
    keep_invalid = parse_failures == "keep"
    usable = [r for r in rows if r["parse_status"] == "ok" or (keep_invalid and r["raw"].strip())]
    if per_scenario is not None and subsample == "stratified":
        by_scenario: dict[str, list[dict[str, Any]]] = {}
        for r in usable:
            by_scenario.setdefault(r["scenario"], []).append(r)
        chosen = {id(r) for rs in by_scenario.values() for r in stratified_pick(rs, per_scenario)}
        picked = [r for r in usable if id(r) in chosen]
    else:
        taken: Counter[str] = Counter()
        picked = []
        for r in usable:
            if per_scenario is not None and taken[r["scenario"]] >= per_scenario:
                continue
            picked.append(r)
            taken[r["scenario"]] += 1
    if not any(r["parse_status"] == "ok" for r in picked):
        raise ConfigError("dataset", "0 usable rows", "a dataset with parseable teacher answers")
    valid = [r for r in picked if r["parse_status"] == "ok"]
    if shuffle_motivations:
        shuffled = iter(_shuffled_motivations(valid, seed))
        reasons = [next(shuffled) if r["parse_status"] == "ok" else "" for r in picked]
    else:
        reasons = [split_action_and_motivation(r["raw"])[1] for r in picked]
    out = []
    for r, motivation in zip(picked, reasons, strict=True):
        decision = split_action_and_motivation(r["raw"])[0]
        if r["parse_status"] != "ok":
            completion = r["raw"].strip()
        elif not motivations or not motivation:
            completion = decision
        elif order == "motivation_first":
            completion = f"{motivation}\n\n{decision}"
        else:
            completion = f"{decision}\n\n{motivation}"
        out.append(
            {
                "scenario": r["scenario"],
                "messages": r["messages"],
                "completion": completion,
                "value": r["value"],
            }
        )
    return out


def action_shares(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per 2x2 scenario, the share of C and of D among *all* its parsed answers (the decision loss's
    targets)."""
    out: dict[str, dict[str, float]] = {}
    for key, entry in cooperation_rates(rows).items():
        if entry.get("p_c") is not None:
            out[key] = {"C": entry["p_c"], "D": 1.0 - entry["p_c"]}
    return out


def cooperation_rates(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario: share of C (or mean donation), counts and parse-failure counts."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["scenario"], []).append(r)
    out = {}
    for key, rs in by.items():
        ok = [r for r in rs if r["parse_status"] == "ok"]
        entry: dict[str, Any] = {"n": len(rs), "n_ok": len(ok), "n_failed": len(rs) - len(ok)}
        if ok and isinstance(ok[0]["value"], int) and not isinstance(ok[0]["value"], bool):
            vals = [r["value"] for r in ok]
            entry |= {"mean_donation": float(np.mean(vals)), "distribution": dict(Counter(vals))}
        elif ok:
            entry |= {
                "c": sum(r["value"] == "C" for r in ok),
                "p_c": sum(r["value"] == "C" for r in ok) / len(ok),
            }
        out[key] = entry
    return out
