"""Pad token choice for tokenizers that ship none (issue 10, item 5).

Llama-3's vocabulary has no <|endoftext|>, <pad>, <|pad|> or <unk>, only reserved special tokens (and,
from 3.1, <|finetune_right_pad_id|>). The tokenizers here are built locally with the same special
tokens, since nothing can be fetched from the HF hub, and loaded through ``load_tokenizer`` from disk.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerFast

from stratdistill.errors import ConfigError
from stratdistill.finetune import IGNORE_INDEX, tokenize_example
from stratdistill.students import load_tokenizer

WORDS = ["[UNK_WORD]", "you", "are", "a", "player", "choose", "C", "or", "D", "I", "would", "."]
BOS, EOS, END_OF_TEXT = "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>"
HEADERS = ["<|start_header_id|>", "<|end_header_id|>"]
# Llama-3's template, trimmed: bos, then every turn as header + content + <|eot_id|>.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{{ message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
RESERVED = [f"<|reserved_special_token_{i}|>" for i in range(4)]


def _save_tokenizer(
    path: Path,
    specials: list[str],
    template: str = LLAMA3_TEMPLATE,
    bos: str | None = BOS,
    eos: str = EOS,
    pad: str | None = None,
    plain_added: tuple[str, ...] = (),
) -> Path:
    """A word-level tokenizer with the given special tokens after the words, saved like a hub folder."""
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK_WORD]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad)
    tok.add_special_tokens({"additional_special_tokens": [t for t in specials if t not in (bos, eos, pad)]})
    tok.add_tokens(list(plain_added))  # added but not special, as Gemma keeps its <unusedN>
    tok.chat_template = template
    tok.save_pretrained(path)
    return path


def _load(path: Path):
    """The student's tokenizer as the pipeline loads it: a local folder named as student.model_id."""
    cfg = SimpleNamespace(gguf_package=None, model_id=str(path), revision=None, trust_remote_code=False)
    return load_tokenizer(cfg, path.parent / "cache")


def test_llama3_tokenizer_pads_with_a_reserved_special_token(tmp_path: Path) -> None:
    path = _save_tokenizer(tmp_path / "llama3", [BOS, EOS, END_OF_TEXT, *HEADERS, *RESERVED])
    tok = _load(path)
    assert tok.pad_token == "<|reserved_special_token_0|>"
    assert tok.pad_token_id not in (tok.eos_token_id, tok.bos_token_id)
    # it survives a save/load round trip, so a checkpoint's tokenizer pads the same way
    tok.save_pretrained(tmp_path / "again")
    assert _load(tmp_path / "again").pad_token_id == tok.pad_token_id


def test_reserved_token_used_by_the_chat_template_is_skipped(tmp_path: Path) -> None:
    template = LLAMA3_TEMPLATE.replace("{{ bos_token }}", "{{ bos_token }}<|reserved_special_token_0|>")
    path = _save_tokenizer(tmp_path / "llama3", [BOS, EOS, *HEADERS, *RESERVED], template=template)
    assert _load(path).pad_token == "<|reserved_special_token_1|>"


def test_llama31_tokenizer_pads_with_finetune_right_pad_id(tmp_path: Path) -> None:
    specials = [BOS, EOS, END_OF_TEXT, *HEADERS, *RESERVED[:2], "<|finetune_right_pad_id|>", *RESERVED[2:]]
    tok = _load(_save_tokenizer(tmp_path / "llama31", specials))
    assert tok.pad_token == "<|finetune_right_pad_id|>"
    assert tok.pad_token_id != tok.eos_token_id


def test_gemma_like_unused_added_token_is_a_spare(tmp_path: Path) -> None:
    path = _save_tokenizer(tmp_path / "gemma", [BOS, EOS], plain_added=("<unused0>", "<unused1>"))
    assert _load(path).pad_token == "<unused0>"


def test_existing_distinct_pad_is_kept(tmp_path: Path) -> None:
    path = _save_tokenizer(tmp_path / "padded", [BOS, EOS, *RESERVED, "<|pad|>"], pad="<|pad|>")
    assert _load(path).pad_token == "<|pad|>"


def test_no_spare_token_is_a_one_line_config_error_naming_the_model(tmp_path: Path) -> None:
    # eos doubles as pad, and the only pad-like tokens are eos, bos or written by the chat template
    template = LLAMA3_TEMPLATE.replace("{{ bos_token }}", "{{ bos_token }}<|reserved_special_token_0|>")
    path = _save_tokenizer(
        tmp_path / "bare", [BOS, EOS, *HEADERS, RESERVED[0]], template=template, bos="<pad>", pad=EOS
    )
    with pytest.raises(ConfigError) as err:
        _load(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert err.value.key == "student.model_id"
    assert str(path) in msg
    assert "reserved" in msg and "<|finetune_right_pad_id|>" in msg
    assert "<pad> (bos)" in msg and "<|reserved_special_token_0|> (used by the chat template)" in msg


def test_reserved_pad_is_never_a_label(tmp_path: Path) -> None:
    """Padding is masked by position (label -100, attention 0), and eos stays the answer's last label."""
    tok = _load(_save_tokenizer(tmp_path / "llama3", [BOS, EOS, END_OF_TEXT, *HEADERS, *RESERVED]))
    msgs = [{"role": "user", "content": "you are a player . choose C or D"}]
    feats = [
        tokenize_example({"messages": msgs, "completion": completion}, tok, 256)
        for completion in ("I would choose C .", "D")
    ]
    batch = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE_INDEX)(feats)
    assert (batch["input_ids"] == tok.pad_token_id).any()  # the short example was padded
    assert not (batch["labels"] == tok.pad_token_id).any()
    padded = batch["attention_mask"] == 0
    assert (batch["labels"][padded] == IGNORE_INDEX).all()
    for row, feat in zip(batch["labels"], feats, strict=True):
        assert row[len(feat["labels"]) - 1] == tok.eos_token_id
