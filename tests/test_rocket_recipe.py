"""Rocket (DRAGNLabs/Rocket at 22d5ca3, its newest commit) restated from its files.

examples/configs/rocket_llama.yaml says it is Rocket's default run: these tests hold it to the
numbers of Rocket's config and code, rebuild Rocket's parameter count from model.py's shapes,
and check that synthlm's padded rows and its tokenization give the loss the same targets as
Rocket's dataset.py and tokenizer scripts do. docs/papers/rocket.md explains every difference.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthlm.data.mixture import VOCAB_MULTIPLE, DataConfig, Mixture, build_layout, round_up
from synthlm.data.store import TokenStore, write_store
from synthlm.models import model_config, planned_parameters
from synthlm.objectives import IGNORE_INDEX, get_objective
from synthlm.train import load_run_config

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "rocket_llama.yaml"

# configs/default_config.yaml (the config train.py reads)
DIM, N_LAYERS, N_HEADS = 512, 8, 8
MULTIPLE_OF = 256
NORM_EPS = 1.0e-5
BATCH_SIZE = 32  # per device: DataLoader(batch_size=config.batch_size)
SEQUENCE_LENGTH = 1024
LR = 1.0e-4
NUM_EPOCHS = 10
SEED = 42
DEVICES, NUM_NODES, GRAD_ACCUM = 8, 1, 1
# slurm/train_tokenizer.sh: --vocab_size=32000 --pad_id=3 (SentencePiece keeps unk 0, bos 1,
# eos 2 by default)
VOCAB_SIZE = 32000
SPECIAL_IDS = {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
# model.py: precompute_freqs_cis(theta=10000.0) for sequence_length * 2 positions
ROPE_THETA = 10000.0
ROPE_POSITIONS = SEQUENCE_LENGTH * 2
# llama.py: torch.optim.Adam(params, lr=config.lr), so torch's defaults for the rest
ADAM_BETAS, ADAM_EPS, ADAM_WEIGHT_DECAY = (0.9, 0.999), 1e-8, 0.0
# configs/default_config.yaml: early_stopping 5, save_top_k 3, gamma 0.85; train.py:
# EarlyStopping('val_loss', patience=config.early_stopping, mode='min') and
# ModelCheckpoint(save_top_k=config.save_top_k, monitor='val_loss', mode='min'), both on
# Lightning's once-an-epoch validation; torch.set_float32_matmul_precision('medium')
PATIENCE, SAVE_TOP_K, GAMMA, MATMUL_PRECISION = 5, 3, 0.85, "medium"


def rocket_ffn_hidden(dim: int, multiple_of: int) -> int:
    """model.py FeedForward: hidden_dim = 4 * dim from TransformerBlock, then 2/3 of it
    (int), rounded up to a multiple of multiple_of."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


def rocket_parameters(vocab: int, dim: int, layers: int, ffn: int) -> int:
    """model.py Transformer: embedding, per block proj_q/k/v/out (dim x dim, no bias), w1/w2/w3
    (dim x ffn, no bias) and two RMSNorm weights, the final RMSNorm, an untied output layer.
    freqs_cis is a plain attribute, not a parameter."""
    block = 4 * dim * dim + 3 * dim * ffn + 2 * dim
    return vocab * dim + layers * block + dim + dim * vocab


def test_rocket_llama_is_rockets_default_run():
    c = load_run_config([CONFIG])
    assert (c.seed, c.model.arch, c.model.init_from) == (SEED, "llama", None)
    hf = model_config(c.model, vocab_size=VOCAB_SIZE)
    assert (hf.hidden_size, hf.num_hidden_layers, hf.num_attention_heads) == (
        DIM,
        N_LAYERS,
        N_HEADS,
    )
    assert hf.num_key_value_heads == N_HEADS, "model.py has no grouped-query attention"
    assert hf.intermediate_size == rocket_ffn_hidden(DIM, MULTIPLE_OF) == 1536
    assert hf.rms_norm_eps == NORM_EPS and hf.hidden_act == "silu"
    assert hf.rope_parameters["rope_theta"] == ROPE_THETA
    assert hf.rope_parameters["rope_type"] == "default"
    assert hf.max_position_embeddings == ROPE_POSITIONS
    assert not hf.tie_word_embeddings and not hf.attention_bias and not hf.mlp_bias
    assert hf.attention_dropout == 0.0, "model.py has no dropout"

    # dataset.py: x = item[:sequence_length], y = item[1:sequence_length + 1]: a row holds
    # sequence_length + 1 tokens of one document, padded, never packed
    assert (c.data.seq_len, c.data.packing) == (SEQUENCE_LENGTH + 1, False)
    # Lightning's DistributedSampler + DataLoader(drop_last=False): each epoch its own batches
    assert c.data.epoch_batches == "per_epoch"
    assert c.objective.name == "clm"

    o, s, t = c.optim, c.schedule, c.train
    assert (o.name, o.lr, o.betas, o.eps, o.weight_decay) == (
        "adamw",  # with no weight decay, AdamW's update is Adam's
        LR,
        ADAM_BETAS,
        ADAM_EPS,
        ADAM_WEIGHT_DECAY,
    )
    # llama.py: StepLR(optimizer, step_size=1, gamma=0.85), which Lightning steps once an epoch
    assert (s.name, s.decay_every, s.gamma, s.warmup_steps) == ("step", "epoch", GAMMA, 0)
    # model.py initialises nothing itself: every layer keeps PyTorch's default init
    assert c.model.init == "torch"
    assert (t.epochs, t.batch_size) == (NUM_EPOCHS, BATCH_SIZE)
    assert t.global_batch_size == DEVICES * NUM_NODES * BATCH_SIZE * GRAD_ACCUM
    # train.py's Trainer sets neither precision nor gradient_clip_val: Lightning's fp32, no clip
    assert (t.precision, t.clip_grad) == ("fp32", None)
    assert t.matmul_precision == MATMUL_PRECISION
    # llama.py: CrossEntropyLoss(ignore_index=pad_id) averages each GPU's batch over its own
    # targets and DDP averages the GPUs' gradients: a mean of micro-batch means
    assert t.loss_average == "micro_batch"
    val_loss = f"eval/{c.data.eval[0].name}/loss"  # validation_step's val_loss, per epoch
    assert t.eval_every == "epoch"
    e, b = t.early_stopping, t.keep_best
    assert (e.metric, e.mode, e.patience, e.min_delta) == (val_loss, "min", PATIENCE, 0.0)
    assert (b.k, b.metric, b.mode) == (SAVE_TOP_K, val_loss, "min")


def test_the_model_has_rockets_parameter_count():
    c = load_run_config([CONFIG])
    assert round_up(VOCAB_SIZE, VOCAB_MULTIPLE) == VOCAB_SIZE, "no extra embedding rows"
    expected = rocket_parameters(VOCAB_SIZE, DIM, N_LAYERS, rocket_ffn_hidden(DIM, MULTIPLE_OF))
    assert expected == 60_039_680
    assert planned_parameters(c.model, model_config(c.model, vocab_size=VOCAB_SIZE)) == expected


def test_the_embedding_is_exactly_as_wide_as_the_tokenizer(tmp_path):
    """model.py sizes the embedding and output by n_words: Meta's tokenizer plus <pad> is
    32,001 rows there, not 32,064 (synthlm's default rounding); GPT-NeoX's rule is 128."""
    c = load_run_config([CONFIG])
    assert c.model.vocab_multiple == 1
    prefix = tmp_path / "docs_text_document"
    write_store(prefix, [[1, 5, 2]], vocab_size=32_001)
    data = DataConfig(sources=[{"name": "text", "path": str(prefix)}], seq_len=8)
    layout = build_layout(data, 32_001, 0, multiple=c.model.vocab_multiple)
    assert layout.model_vocab_size == 32_001
    assert build_layout(data, 32_001, 0).model_vocab_size == 32_064
    assert build_layout(data, 50_277, 0, multiple=128).model_vocab_size == 50_304
    assert build_layout(data, 50_277, 300, multiple=128).model_vocab_size == 50_688


def rocket_targets(item: list[int], sequence_length: int, pad: int) -> list[tuple[tuple, int]]:
    """(context, target) pairs Rocket's loss sees for one document: dataset.py pads a short
    item with pad up to sequence_length + 1 and cuts it there, x = item[:S], y = item[1:S + 1];
    llama.py's CrossEntropyLoss(ignore_index=pad_id) drops the pad targets."""
    if len(item) <= sequence_length:
        item = item + [pad] * (sequence_length - len(item) + 1)
    x, y = item[:sequence_length], item[1 : sequence_length + 1]
    return [(tuple(x[: i + 1]), y[i]) for i in range(sequence_length) if y[i] != pad]


def test_padded_rows_train_on_rockets_targets(tmp_path):
    """Documents shorter than, as long as and longer than a row, each as `synthlm tokenize
    --prepend-bos --append-eod` stores it (Rocket: encode(bos=True, eos=True))."""
    bos, eos, pad = SPECIAL_IDS["bos"], SPECIAL_IDS["eos"], SPECIAL_IDS["pad"]
    rocket_length = 8  # Rocket's sequence_length at toy scale
    docs = [[bos, 10 + k, *range(20, 20 + n), eos] for k, n in enumerate([0, 3, 5, 6, 7, 12, 30])]
    prefix = tmp_path / "docs_text_document"
    write_store(prefix, docs, vocab_size=64, append_eod=True, prepend_bos=True)
    data = DataConfig(
        sources=[{"name": "text", "path": str(prefix)}],
        seq_len=rocket_length + 1,
        packing=False,
    )
    mixture = Mixture(data, seed=SEED, layout=build_layout(data, 64, 0), eos_id=eos)
    samples = [mixture.sample(i) for i in range(len(docs))]
    batch = get_objective("clm").collate(samples)
    seen = {}
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
        seen[ids[1]] = [
            (tuple(ids[:t]), labels[t]) for t in range(1, len(ids)) if labels[t] != IGNORE_INDEX
        ]
    assert sorted(seen) == [doc[1] for doc in docs], "one epoch: every document once"
    for doc in docs:
        assert seen[doc[1]] == rocket_targets(doc, rocket_length, pad), doc


@pytest.fixture(scope="module")
def rocket_sentencepiece(tmp_path_factory, shakespeare):
    """A SentencePiece model trained with slurm/train_tokenizer.sh's arguments (smaller vocab)."""
    import sentencepiece as spm

    root = tmp_path_factory.mktemp("rocket_sp")
    lines = shakespeare.read_text(encoding="utf-8").splitlines()[:3000]
    (root / "train.txt").write_text("\n".join(lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        f"--input={root / 'train.txt'} --input_format=text --input_sentence_size=1000000 "
        f"--train_extremely_large_corpus=false --model_prefix={root / 'tokenizer'} "
        "--vocab_size=400 --shuffle_input_sentence=true --pad_id=3 --minloglevel=2"
    )
    return root / "tokenizer.model", lines


def test_synthlm_tokenize_writes_rockets_ids(tmp_path, rocket_sentencepiece):
    """tokenizer/tokenizer.py encode(s, bos=True, eos=True) per CSV row, as
    tokenizer/wikitext_tokenization.py calls it, is what `synthlm tokenize --prepend-bos
    --append-eod` stores with the same SentencePiece model."""
    import sentencepiece as spm

    from synthlm.data.tokenization import tokenize
    from synthlm.tokenizers import load_tokenizer

    model, lines = rocket_sentencepiece
    sp = spm.SentencePieceProcessor(model_file=str(model))
    assert load_tokenizer(model).special_ids() == SPECIAL_IDS
    rows = [line for line in lines[:400] if line.strip()]
    pd.DataFrame({"text": rows}).to_csv(tmp_path / "train.csv", index=False)
    tokenize(
        [tmp_path / "train.csv"],
        str(model),
        tmp_path / "wikitext",
        workers=1,
        quiet=True,
        keys=["text"],
        prepend_bos=True,
        append_eod=True,
    )
    store = TokenStore(tmp_path / "wikitext_text_document")
    assert len(store) == len(rows)
    for i, row in enumerate(rows):
        expected = [sp.bos_id(), *sp.encode(row), sp.eos_id()]
        assert np.asarray(store.document(i)).tolist() == expected, row


def rocket_rows(csv_path: Path) -> list[str]:
    """tokenize_data.py reads the CSV with pd.read_csv(raw_data, dtype=str, na_filter=False):
    an empty field stays "" (not NaN), so every row is a document, wikitext's empty lines too."""
    return pd.read_csv(csv_path, dtype=str, na_filter=False)["text"].tolist()


def rocket_documents(csv_path: Path, model: Path) -> list[list[int]]:
    """tokenizer/wikitext_tokenization.py: encode(row, bos=True, eos=True) for every row, which
    tokenizer/tokenizer.py makes [bos_id] + sp_model.encode(row) + [eos_id]."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    return [[sp.bos_id(), *sp.encode(row), sp.eos_id()] for row in rocket_rows(csv_path)]


@pytest.fixture
def rows_with_empties(tmp_path, rocket_sentencepiece) -> Path:
    """Rows as wikitext has them: text, empty lines ("") and a whitespace-only line (ending in a
    newline, as wikitext's rows do, so the CSV quotes it: pandas drops a bare whitespace line
    as blank, which is Rocket's CSV reading, not its empty-row rule)."""
    _, lines = rocket_sentencepiece
    rows = [*lines[:300], " \n", "", *lines[300:400]]
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": rows}).to_csv(path, index=False)
    return path


def test_keep_empty_writes_rockets_ids_for_every_row(
    tmp_path, rocket_sentencepiece, rows_with_empties
):
    """`synthlm tokenize --keep-empty --prepend-bos --append-eod` stores Rocket's documents, one
    per row in row order, the empty rows as <s></s> (one target: EOS after BOS)."""
    from cli_runner import run_cli

    model, _ = rocket_sentencepiece
    expected = rocket_documents(rows_with_empties, model)
    empties = sum(doc == [SPECIAL_IDS["bos"], SPECIAL_IDS["eos"]] for doc in expected)
    assert empties > 50, "tinyshakespeare's blank lines and the whitespace row are empty rows"
    result = run_cli(
        "tokenize",
        str(rows_with_empties),
        "--tokenizer",
        str(model),
        "--out",
        str(tmp_path / "wikitext"),
        "--keep-empty",
        "--prepend-bos",
        "--append-eod",
        "--workers",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(expected):,} documents" in result.stdout
    assert f"{empties:,} empty kept" in result.stdout
    store = TokenStore(tmp_path / "wikitext_text_document")
    assert [store.document(i).tolist() for i in range(len(store))] == expected
    assert store.metadata["keep_empty"] is True and store.metadata["empty_documents"] == empties


@pytest.mark.parametrize("packing", [False, True])
def test_training_rows_read_kept_empty_documents(
    tmp_path, rocket_sentencepiece, rows_with_empties, packing
):
    """A store of [bos, eos] documents among the others trains: padded rows give each document
    Rocket's targets (an empty row: EOS after BOS), packed windows hold every document whole."""
    from synthlm.data.tokenization import tokenize

    model, _ = rocket_sentencepiece
    docs = rocket_documents(rows_with_empties, model)
    tokenize(
        [rows_with_empties],
        str(model),
        tmp_path / "wikitext",
        workers=1,
        quiet=True,
        keep_empty=True,
        prepend_bos=True,
        append_eod=True,
    )
    bos, eos, pad = SPECIAL_IDS["bos"], SPECIAL_IDS["eos"], SPECIAL_IDS["pad"]
    rocket_length = 8
    prefix = tmp_path / "wikitext_text_document"
    data = DataConfig(
        sources=[{"name": "text", "path": str(prefix)}],
        seq_len=rocket_length + 1,
        packing=packing,
    )
    mixture = Mixture(data, seed=SEED, layout=build_layout(data, 400, 0), eos_id=eos)
    if not packing:
        samples = [mixture.sample(i) for i in range(len(docs))]
        batch = get_objective("clm").collate(samples)
        seen = [
            [(tuple(ids[:t]), labels[t]) for t in range(1, len(ids)) if labels[t] != IGNORE_INDEX]
            for ids, labels in zip(
                batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True
            )
        ]
        assert sorted(seen) == sorted(rocket_targets(doc, rocket_length, pad) for doc in docs)
        assert seen.count([((bos,), eos)]) > 50  # the empty rows' single target
        return
    epoch = mixture.sources[0].epoch_tokens
    count = -(-epoch // data.seq_len)
    stream = np.concatenate([mixture.sample(i).input_ids for i in range(count)])[:epoch]
    ends = np.flatnonzero(stream == eos) + 1
    stored = [part.tolist() for part in np.split(stream, ends[:-1])]
    assert sorted(stored) == sorted(docs), "one epoch: every document once, whole"


def test_synthlm_sentencepiece_training_keeps_rockets_special_ids(tmp_path, shakespeare):
    from sentencepiece import sentencepiece_model_pb2 as pb

    from synthlm.tokenizers.train import train_tokenizer

    text = tmp_path / "train.txt"
    text.write_text(
        "\n".join(shakespeare.read_text(encoding="utf-8").splitlines()[:3000]), encoding="utf-8"
    )
    tok = train_tokenizer(
        [text], "sentencepiece", 400, tmp_path / "tok", sp_model_type="unigram", quiet=True
    )
    assert tok.special_ids() == SPECIAL_IDS
    proto = pb.ModelProto()
    proto.ParseFromString((tmp_path / "tok" / "tokenizer.model").read_bytes())
    assert proto.trainer_spec.model_type == pb.TrainerSpec.UNIGRAM  # SentencePiece's default
