"""Human-readable summaries of token stores (``synthlm data inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthlm.data.store import TokenStore, describe, normalize_prefix, store_exists
from synthlm.errors import StoreError, UserError


def _store_prefixes(path: Path) -> list[Path]:
    """A store prefix, or every split of a synthetic dataset directory."""
    if path.is_dir():
        found = [path / split for split in ("train", "valid", "test") if store_exists(path / split)]
        if not found:
            raise StoreError(f"{path}: a directory, but it holds no train/valid/test token stores")
        return found
    return [normalize_prefix(path)]


def _decoder(store: TokenStore, tokenizer: str | None):
    """The tokenizer to decode ``store``'s samples with: ``tokenizer``, else the one its
    PREFIX.json records; None when there is neither.

    A tokenizer that loads but did not write the store is refused (see
    :mod:`synthlm.data.provenance`, which also accepts the writing tokenizer saved again with
    ids appended): its samples would be fluent-looking garbage, the very thing inspect is run
    to rule out. One that does not load is only a note, so the statistics still print.
    """
    name = tokenizer or (store.metadata.get("tokenizer") or {}).get("path")
    if not name:
        return None
    from synthlm.data.provenance import check_store_tokenizer
    from synthlm.tokenizers import load_tokenizer

    try:
        loaded = load_tokenizer(name)
    except Exception as exc:  # a sample we cannot decode should not hide the statistics
        return _Unavailable(f"tokenizer {name} could not be loaded: {exc}")
    where = f"--tokenizer {name}" if tokenizer else f"the recorded tokenizer {name}"
    fix = (
        "Decode it with the tokenizer that wrote it (leave out --tokenizer to use the one "
        "PREFIX.json records)"
        if tokenizer
        else "Pass --tokenizer with the tokenizer that wrote it"
    )
    check_store_tokenizer(store.prefix, loaded, where, fix)
    return loaded


class _Unavailable:
    def __init__(self, why: str) -> None:
        self.why = why


def inspect_report(
    path: str | Path, *, sample: int = 2, tokenizer: str | None = None, max_chars: int = 300
) -> dict[str, Any]:
    """Statistics for each store at ``path`` plus a printable text with decoded samples."""
    for flag, value in (("--sample", sample), ("--max-chars", max_chars)):
        if value < 0:
            raise UserError(f"{flag}: {value} is negative; give 0 or more")
    stats, lines = [], []
    for prefix in _store_prefixes(Path(path)):
        store = TokenStore(prefix)  # ids beyond the recorded vocabulary are an error, not a sample
        info = describe(store)
        stats.append(info)
        pct = info["length_percentiles"]
        lines += [
            f"{info['prefix']}",
            f"  documents  {info['documents']:,}",
            f"  tokens     {info['tokens']:,}",
            f"  dtype      {info['dtype']}   vocab_size {info['vocab_size']}   loss mask "
            f"{'yes' if info['has_mask'] else 'no'}",
            f"  length     mean {info['mean_length']:.1f}  p0 {pct['p0']:.0f}  p10 "
            f"{pct['p10']:.0f}  p50 {pct['p50']:.0f}  "
            f"p90 {pct['p90']:.0f}  p99 {pct['p99']:.0f}  max {pct['p100']:.0f}",
        ]
        decoder = _decoder(store, tokenizer)
        if isinstance(decoder, _Unavailable):
            lines.append(f"  ({decoder.why}; showing ids)")
            decoder = None
        if decoder is not None:
            store.check_ids(decoder.vocab_size)
        for i in range(min(sample, len(store))):
            ids = store.document(i)
            shown = (
                decoder.decode(ids.tolist())
                if decoder is not None
                else " ".join(map(str, ids[:64].tolist()))
            )
            shown = shown if len(shown) <= max_chars else shown[:max_chars] + " ..."
            lines.append(f"  [doc {i}, {len(ids)} tokens] {shown!r}")
    return {"stats": stats if len(stats) > 1 else stats[0], "text": "\n".join(lines)}
