"""Generation: greedy/sampled decoding, stop strings, prompt files, and the ``synthlm generate`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))  # the shared tiny-model helpers

from tiny_lm import (
    EOS,
    PAD,
    bigram_checkpoint,
    bigram_model,
    byte_id,
    byte_tokenizer,
    tiny_config,
)
from transformers import LlamaForCausalLM

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.inference.sampling import SamplingConfig, decode_escapes, generate_texts, read_prompts

A, B, C, D = (byte_id(ch) for ch in "abcd")
CHAIN = {B: C, C: D, D: EOS, EOS: A, A: B}  # greedy: "...b" -> "cd" then EOS; start -> "abcd"


@pytest.fixture(scope="module")
def chain_model():
    return bigram_model(CHAIN)


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_config()).eval()


def greedy(**kwargs) -> SamplingConfig:
    return SamplingConfig(temperature=0, **kwargs)


def complete(model, prompts, sampling, **kwargs):
    return list(generate_texts(model, byte_tokenizer(), prompts, sampling, **kwargs))


# ---------------------------------------------------------------------------------------------
# Library


def test_greedy_follows_the_model_and_finishes_at_eos(chain_model):
    (out,) = complete(chain_model, ["xab"], greedy(max_new_tokens=10))
    assert (out.prompt, out.text, out.finished) == ("xab", "cd", True)
    assert (out.prompt_tokens, out.completion_tokens) == (3, 3)  # c, d, EOS
    assert out.seconds > 0


def test_unconditional_starts_like_a_training_document(chain_model):
    (out,) = complete(chain_model, None, greedy(max_new_tokens=10))
    assert (out.prompt, out.text, out.finished) == ("", "abcd", True)


def test_stop_string_cuts_text_and_sets_finished(chain_model):
    (out,) = complete(chain_model, ["b"], greedy(max_new_tokens=10, stop=["d"]))
    assert (out.text, out.finished, out.completion_tokens) == ("c", True, 2)


def test_suppressed_ids_are_never_generated(chain_model):
    (out,) = complete(chain_model, ["b"], greedy(max_new_tokens=1), suppress_ids=[C])
    assert "c" not in out.text and out.completion_tokens == 1


def test_running_out_of_tokens_is_not_finished(chain_model):
    (out,) = complete(chain_model, ["b"], greedy(max_new_tokens=2))
    assert (out.text, out.finished, out.completion_tokens) == ("cd", False, 2)


def test_batched_left_padded_greedy_equals_one_by_one(random_model):
    prompts = ["To be", "or not to be, that is", "q"]
    batched = [
        c.text for c in complete(random_model, prompts, greedy(max_new_tokens=12), batch_size=3)
    ]
    single = [complete(random_model, [p], greedy(max_new_tokens=12))[0].text for p in prompts]
    assert batched == single
    assert (
        complete(random_model, prompts, greedy(max_new_tokens=12), batch_size=2)[0].text
        == batched[0]
    )


def test_seed_makes_sampling_reproducible(random_model):
    sampling = SamplingConfig(
        temperature=1.0, top_k=50, top_p=0.95, max_new_tokens=16, num_samples=3, seed=7
    )
    first = [c.text for c in complete(random_model, ["hello"], sampling)]
    again = [c.text for c in complete(random_model, ["hello"], sampling)]
    other = [
        c.text for c in complete(random_model, ["hello"], sampling.model_copy(update={"seed": 8}))
    ]
    assert first == again
    assert first != other
    assert len(set(first)) > 1, "three samples of a random model should differ"
    assert [c.sample for c in complete(random_model, ["hello"], sampling)] == [0, 1, 2]


def test_a_sample_does_not_depend_on_the_batch_or_the_prompts_beside_it(random_model):
    """Each completion draws from its own stream (seed, prompt number, sample number): the
    batch size, the other prompts' lengths and stopping times change nothing."""
    prompts = ["To be", "or not to be, that is", "q", "the question"]
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=12, num_samples=2, seed=3)
    runs = [
        [c.text for c in complete(random_model, prompts, sampling, batch_size=b)]
        for b in (1, 2, 3, 8)
    ]
    assert all(texts == runs[0] for texts in runs), runs
    assert len(set(runs[0])) == len(runs[0]), "eight draws of a random model should differ"
    first = complete(random_model, prompts[:1], sampling)
    assert [c.text for c in first] == runs[0][:2], "a prompt alone = the file's first prompt"


def test_each_row_samples_the_processed_distribution():
    """The rows' Gumbel-max picks are draws from softmax(logits / T) restricted to the top k,
    the distribution transformers samples (written out here with plain torch)."""
    from synthlm.inference.row_sampling import row_sampler, row_seeds

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    rows = 20_000
    for temperature, top_k in ((1.0, 0), (0.7, 3)):
        seeds = row_seeds(11, range(rows), 1)
        sampler = row_sampler(seeds, temperature, top_k, 1.0)
        picks = sampler(torch.zeros(rows, 1, dtype=torch.long), logits.repeat(rows, 1))
        counts = torch.bincount(picks.argmax(dim=1), minlength=len(logits)).double() / rows
        expected = torch.softmax(logits.double() / temperature, dim=0)
        if top_k:
            expected[expected.argsort(descending=True)[top_k:]] = 0
            expected /= expected.sum()
        assert torch.allclose(counts, expected, atol=0.012), (counts, expected)
        assert (counts[expected == 0] == 0).all()


def test_row_seeds_depend_on_seed_prompt_and_sample_only():
    from synthlm.inference.row_sampling import row_seeds

    assert row_seeds(0, [5, 6], 2) == row_seeds(0, [5], 2) + row_seeds(0, [6], 2)
    assert len(set(row_seeds(0, range(50), 2) + row_seeds(1, range(50), 2))) == 200
    assert row_seeds(-1, [0], 1) != row_seeds(1, [0], 1)


def test_greedy_with_many_samples_is_rejected():
    with pytest.raises(ValueError, match="more than one sample per prompt needs sampling"):
        SamplingConfig(temperature=0, num_samples=2)


def test_prompt_longer_than_the_context_fails_before_generating(chain_model):
    with pytest.raises(UserError, match="exceeds the model's context of 256"):
        complete(chain_model, ["a" * 250], greedy(max_new_tokens=10))


def test_read_prompts_lines_separator_and_blanks(tmp_path):
    lines = tmp_path / "p.txt"
    lines.write_text("first prompt\n\n  \nsecond\r\n", encoding="utf-8")
    assert read_prompts(lines) == ["first prompt", "second"]
    blocks = tmp_path / "b.txt"
    blocks.write_text("line one\nline two\n<END>\nnext\n<END>\n", encoding="utf-8")
    assert read_prompts(blocks, "<END>") == ["line one\nline two", "next"]
    assert decode_escapes("\\n\\nQ:") == "\n\nQ:"


def test_empty_prompt_file_is_a_user_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no prompts"):
        read_prompts(empty)


# ---------------------------------------------------------------------------------------------
# CLI (real subprocesses)


@pytest.fixture(scope="module")
def chain_ckpt(tmp_path_factory) -> Path:
    return bigram_checkpoint(tmp_path_factory.mktemp("run") / "final", CHAIN)


@pytest.mark.slow
def test_cli_prompt_file_writes_one_record_per_prompt(chain_ckpt, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("xab\nb\nzzzb\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "generate",
        str(chain_ckpt),
        "-i",
        str(prompts),
        "-o",
        str(out),
        "--temperature",
        "0",
        "--stop",
        "d",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in records] == ["xab", "b", "zzzb"]
    assert all(r["text"] == "c" and r["finished"] for r in records)
    assert set(records[0]) >= {
        "prompt",
        "text",
        "prompt_tokens",
        "completion_tokens",
        "finished",
        "seconds",
    }
    assert [r["prompt_tokens"] for r in records] == [3, 1, 4]


@pytest.mark.slow
def test_cli_unconditional_and_interactive(chain_ckpt):
    result = run_cli("generate", str(chain_ckpt), "--temperature", "0", "-n", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "abcd"
    ended = run_cli("generate", str(chain_ckpt), "-p", "xd", "--temperature", "0")
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.splitlines()[0] == "xd"  # d -> EOS at once: said, not left blank
    assert "empty completion: the end of text" in ended.stderr
    chat = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthlm",
            "generate",
            str(chain_ckpt),
            "--interactive",
            "--temperature",
            "0",
        ],
        input="xb\n/exit\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert chat.returncode == 0, chat.stderr
    assert "xbcd" in chat.stdout


def test_cli_missing_checkpoint_exits_2(tmp_path):
    result = run_cli("generate", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "checkpoint not found" in result.stderr


def test_cli_empty_prompt_file_exits_2(chain_ckpt, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    result = run_cli("generate", str(chain_ckpt), "-i", str(empty))
    assert result.returncode == 2
    assert "holds no prompts" in result.stderr


def test_cli_bad_sampling_option_exits_2(chain_ckpt):
    result = run_cli("generate", str(chain_ckpt), "--top-p", "1.5")
    assert result.returncode == 2
    assert "top_p" in result.stderr


def metaspace_tokenizer():
    """A SentencePiece-style word tokenizer: each piece carries its leading space as "▁"."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "</s>", "▁First", "▁Citizen:", "▁I", "▁speak"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")


def test_a_continuation_keeps_the_space_its_first_piece_carries():
    """Decoded alone, "▁I" is "I"; after "First Citizen:" it is " I" (as Rocket, decoding prompt
    and continuation together, prints "First Citizen: I")."""
    from synthlm.inference.sampling import decode_continuation

    tok = metaspace_tokenizer()
    prompt = tok("First Citizen:")["input_ids"]
    assert prompt == [2, 3]
    assert decode_continuation(tok, prompt, [4, 5]) == " I speak"
    assert decode_continuation(tok, [], [4, 5]) == "I speak"  # unconditional: a text's start


def test_prompts_are_encoded_text_as_text_like_the_training_stores():
    """A literal special-token string in a prompt is its characters, as ``synthlm tokenize``
    wrote such text into the stores the model learned from (Rocket's wikitext is full of
    "<unk>"), not the special id the tokenizer would otherwise match."""
    from synthlm.inference.sampling import encode_prompts

    tok = byte_tokenizer()
    (row,) = encode_prompts(tok, ["x<eos>y"])
    assert row == [byte_id(ch) for ch in "x<eos>y"]
    assert tok.convert_tokens_to_ids("<eos>") not in row


# ---------------------------------------------------------------------------------------------
# The checkpoint's generation_config does not decide the decoding


def with_settings(model, **settings):
    """``model`` with decoding settings in its generation config, as Hub checkpoints ship them."""
    import copy

    leaky = copy.deepcopy(model)
    for key, value in settings.items():
        setattr(leaky.generation_config, key, value)
    return leaky


def test_checkpoint_beam_search_and_min_length_do_not_leak_in(random_model, chain_model):
    """transformers fills what a call leaves unset from ``model.generation_config``: a
    checkpoint's num_beams turned greedy into beam search, and with sampling multiplied the
    rows the per-row sampler expects (a "row seeds" crash); min_new_tokens hid an EOS."""
    leaky = with_settings(random_model, num_beams=3, no_repeat_ngram_size=1, min_new_tokens=8)
    prompts = ["KING", "hello there"]
    for sampling in (greedy(max_new_tokens=10), SamplingConfig(max_new_tokens=10, seed=3)):
        ours = [c.text for c in complete(leaky, prompts, sampling)]
        assert ours == [c.text for c in complete(random_model, prompts, sampling)]
    assert leaky.generation_config.num_beams == 3, "the model itself is left as loaded"
    (out,) = complete(with_settings(chain_model, min_new_tokens=8), ["xd"], greedy())
    assert (out.text, out.completion_tokens, out.finished) == ("", 1, True)


def test_unused_checkpoint_settings_are_named_with_their_flags(chain_ckpt):
    from transformers import AutoModelForCausalLM

    from synthlm.inference.sampling import unused_generation_settings, unused_settings_note

    saved = AutoModelForCausalLM.from_pretrained(chain_ckpt)
    assert unused_generation_settings(saved) == {}, "what synthlm saves is all kept"
    assert unused_settings_note(saved, chain_ckpt, ["--temperature"]) is None
    leaky = with_settings(saved, num_beams=3, temperature=0.6, do_sample=True)
    note = unused_settings_note(leaky, "ckpt", ["--temperature", "--top-p"])
    assert note.startswith("note: ckpt/generation_config.json sets ")
    assert "num_beams=3" in note and "temperature=0.6" in note
    assert "temperature: --temperature" in note and "num_beams: no synthlm flag" in note


@pytest.mark.slow
def test_cli_names_unused_settings_and_samples_without_beams(chain_ckpt, tmp_path):
    import shutil

    leaky = tmp_path / "leaky"
    shutil.copytree(chain_ckpt, leaky)
    config = json.loads((leaky / "generation_config.json").read_text())
    config.update(num_beams=3, min_new_tokens=4)
    (leaky / "generation_config.json").write_text(json.dumps(config))
    done = run_cli("generate", str(leaky), "-p", "xab", "--temperature", "1", "-n", "6", "-q")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "row seeds" not in done.stderr
    assert "sets min_new_tokens=4, num_beams=3" in done.stderr
    assert "no synthlm flag" in done.stderr


# ---------------------------------------------------------------------------------------------
# Where a row ends: as transformers ends and decodes it


def reference(model, prompt: str, **kwargs) -> list[int]:
    """transformers' own generate, one prompt, greedy: the new tokens before any padding."""
    tok = byte_tokenizer()
    ids = torch.tensor([tok(prompt)["input_ids"]])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        eos_token_id=EOS,
        pad_token_id=PAD,
        **kwargs,
    )
    return out[0, ids.shape[1] :].tolist()


def test_a_generated_pad_token_does_not_cut_the_completion():
    """A model that writes the pad id (pad != EOS) mid-text: transformers goes on to EOS and
    ``decode(skip_special_tokens=True)`` drops the pad; the record says the same."""
    padding = bigram_model({B: PAD, PAD: C, C: EOS})
    new = reference(padding, "b", max_new_tokens=8)
    assert new == [PAD, C, EOS]
    (out,) = complete(padding, ["b"], greedy(max_new_tokens=8))
    assert out.text == byte_tokenizer().decode(new, skip_special_tokens=True) == "c"
    assert (out.completion_tokens, out.finished) == (3, True)


def test_a_stop_string_that_starts_in_the_prompt_finishes_the_row(chain_model):
    """transformers matches a stop string at the end of the whole sequence, so ``abc`` stops
    "xab" after one token; the record is finished, counts that token, and its text is cut
    before the stop string (which starts in the prompt: nothing is left). Batched with a
    prompt that runs on, so the stopped row is padded."""
    tok = byte_tokenizer()
    new = reference(chain_model, "xab", max_new_tokens=8, stop_strings=["abc"], tokenizer=tok)
    assert new == [C]
    first, second = complete(chain_model, ["xab", "b"], greedy(max_new_tokens=8, stop=["abc"]))
    assert (first.text, first.completion_tokens, first.finished) == ("", 1, True)
    assert (second.text, second.completion_tokens, second.finished) == ("cd", 3, True)
