"""Preparation: the shards hold exactly the documents' tokens, split by the rule; parallel workers make the
same shards as one process; the cache is keyed by content; bad input writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archbench.data import DataSpec, load_tokenizer, open_data, open_prepared, prepare, shards, sources
from archbench.data import preparation as prep_mod
from archbench.data import units as units_mod
from archbench.data.plan import is_validation_doc
from archbench.errors import ConfigError


def tokens_of(root: Path, split: str) -> np.ndarray:
    meta = json.loads((root / "meta.json").read_text())
    parts = [shards.open_tokens(shards.inspect(root / s["file"])) for s in meta["shards"][split]]
    return np.concatenate(parts).astype(np.int64)


def expected_split(docs: list[bytes], encode) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"train": [], "val": []}
    for doc in docs:
        out["val" if is_validation_doc(doc, 0.1) else "train"].extend(encode(doc))
    return out


def test_a_text_directory_becomes_the_bytes_of_its_documents_split_by_the_rule(corpus_dir: Path) -> None:
    root = prepare(DataSpec(str(corpus_dir)), progress=False)
    docs = [sources.utf8(Path(f.path).read_bytes()) for f in sources.resolve(str(corpus_dir))]
    want = expected_split(docs, list)
    assert tokens_of(root, "train").tolist() == want["train"] and tokens_of(root, "val").tolist() == want["val"]
    meta = json.loads((root / "meta.json").read_text())
    assert meta["documents"]["train"] + meta["documents"]["val"] == 40 and meta["documents"]["val"] >= 1
    assert meta["bytes"]["val"] == len(want["val"]) and root.parent.name == "data" and root.name == meta["digest"]
    val_docs = np.load(root / "val_docs.npy")
    assert val_docs[:, 0].sum() == len(want["val"]) and (val_docs[:, 0] == val_docs[:, 1]).all()


def test_jsonl_through_a_bpe_tokenizer_each_document_after_end_of_text(jsonl_file: Path, bpe_tokenizer: Path) -> None:
    root = prepare(DataSpec(str(jsonl_file), str(bpe_tokenizer), text_column="content"), progress=False)
    tok = load_tokenizer(str(bpe_tokenizer))
    docs = [json.loads(line)["content"] for line in jsonl_file.read_text().splitlines()]
    enc = lambda d: [0, *tok.tok.encode(d.decode(), add_special_tokens=False).ids]  # noqa: E731
    want = expected_split([d.encode() for d in docs if d is not None], enc)
    assert tokens_of(root, "train").tolist() == want["train"] and tokens_of(root, "val").tolist() == want["val"]
    meta = json.loads((root / "meta.json").read_text())
    assert meta["skipped_documents"] == 1 and meta["tokenizer"]["vocab_size"] == 512
    assert (root / "tokenizer.json").read_bytes() == bpe_tokenizer.read_bytes()


def test_parallel_workers_make_the_same_shards_as_one_process(
    corpus_dir: Path, jsonl_file: Path, bpe_tokenizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(jsonl_file, corpus_dir / "extra.jsonl")
    one = prepare(DataSpec(str(corpus_dir), str(bpe_tokenizer), text_column="content"), out=tmp_path / "one", workers=1,
                  progress=False)  # fmt: skip
    monkeypatch.setattr(prep_mod, "INLINE_BYTES", 0)
    monkeypatch.setattr(units_mod, "UNIT_BYTES", 20_000)  # ~20 units, JSONL cut into byte ranges
    many = prepare(DataSpec(str(corpus_dir), str(bpe_tokenizer), text_column="content"), out=tmp_path / "many",
                   workers=2, progress=False, shard_tokens=30_000)  # fmt: skip
    meta = json.loads((many / "meta.json").read_text())
    assert meta["workers"] == 2 and len(meta["shards"]["train"]) > 2
    for split in ("train", "val"):
        assert np.array_equal(tokens_of(one, split), tokens_of(many, split))
    assert np.array_equal(np.load(one / "val_docs.npy"), np.load(many / "val_docs.npy"))
    assert json.loads((one / "meta.json").read_text())["digest"] == meta["digest"]


def test_the_cache_is_keyed_by_content_and_prepares_once(corpus_dir: Path, tmp_path: Path) -> None:
    first = prepare(DataSpec(str(corpus_dir)), progress=False)
    stamp = (first / "meta.json").stat().st_mtime_ns
    moved = shutil.copytree(corpus_dir, tmp_path / "moved")
    assert prepare(DataSpec(str(moved)), progress=False) == first  # the same content, wherever it lies
    assert (first / "meta.json").stat().st_mtime_ns == stamp  # not prepared again
    assert prepare(DataSpec(str(moved), "bytes", val_fraction=0.2), progress=False) != first  # another split


def test_an_explicit_validation_source_replaces_the_rule(corpus_dir: Path, tmp_path: Path) -> None:
    val = tmp_path / "val.txt"
    val.write_text("held out text\n" * 100)
    ds = open_data(DataSpec(str(corpus_dir), val=str(val)))
    assert ds.val_stream.head(10**6).tolist() == list(val.read_bytes())
    assert len(ds.train_stream) == sum(f.size for f in sources.resolve(str(corpus_dir)))
    with pytest.raises(ConfigError, match="is in both the data and the validation source"):
        open_data(DataSpec(str(corpus_dir), val=str(sorted(corpus_dir.glob("*.txt"))[0])))


def test_token_files_are_read_in_place_split_by_name(tmp_path: Path) -> None:
    data = tmp_path / "fineweb"
    data.mkdir()
    shards.write_shard(data / "fineweb_val_000000.bin", np.arange(500) % 256, 256)
    shards.write_shard(data / "fineweb_train_000001.bin", np.arange(1000) % 256, 256)
    np.save(data / "fineweb_train_000002.npy", (np.arange(700) % 256).astype(np.uint16))
    ds = open_data(DataSpec(str(data)))
    assert [i.path.name for i in ds.val] == ["fineweb_val_000000.bin"] and ds.root is None
    assert len(ds.train_stream) == 1700 and not any(data.glob("*/meta.json"))  # nothing copied
    assert ds.val_bytes(0, 100) == 100.0  # bytes: decoding counts them


def test_token_ids_beyond_the_tokenizer_are_refused(tmp_path: Path) -> None:
    shards.write_shard(tmp_path / "a.bin", np.array([1, 50000]), 50257)
    shards.write_shard(tmp_path / "b.bin", np.array([1, 2]), 50257)
    with pytest.raises(ConfigError, match=r"token id 50000, outside tokenizer bytes's vocabulary \(256\)"):
        open_data(DataSpec(str(tmp_path)))


def _nothing_written(cache: Path, out: Path) -> bool:
    prepared = list((cache / "data").glob("*/meta.json")) if (cache / "data").exists() else []
    partial = [p for p in out.parent.rglob("*partial*")] + list(cache.rglob("*partial*"))
    return not out.exists() and not prepared and not partial


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda t: ([str(t / "nope")], {}), "data source not found"),
        (lambda t: ([str(_empty_files(t))], {}), "is empty: no document holds any text"),
        (lambda t: ([str(_jsonl(t))], {}), "line 1 has no 'text' field"),
        (lambda t: ([str(_jsonl(t))], {"tokenizer": str(_broken(t))}), "not a tokenizer.json"),
        (lambda t: ([str(_one_doc(t))], {}), "splits into"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, private_cache: Path, make, fragment: str) -> None:
    srcs, kw = make(tmp_path)
    out = tmp_path / "out" / "shards"
    with pytest.raises(ConfigError) as err:
        prepare(DataSpec(srcs, **kw), out=out, progress=False)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert _nothing_written(private_cache, out)


def _empty_files(t: Path) -> Path:
    (t / "empty").mkdir()
    for i in range(3):
        (t / "empty" / f"{i}.txt").write_text("")
    return t / "empty"


def _jsonl(t: Path) -> Path:
    (t / "d.jsonl").write_text('{"body": "x"}\n')
    return t / "d.jsonl"


def _broken(t: Path) -> Path:
    (t / "tok.json").write_text('{"version": "1.0", "model": 3}')
    return t / "tok.json"


def _one_doc(t: Path) -> Path:
    (t / "one.txt").write_text("a single document cannot be split into train and validation\n")
    return t / "one.txt"


def test_a_worker_error_stops_the_pool_and_writes_nothing(
    corpus_dir: Path, tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus_dir / "zz.jsonl").write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    monkeypatch.setattr(prep_mod, "INLINE_BYTES", 0)
    monkeypatch.setattr(units_mod, "UNIT_BYTES", 50_000)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"zz\.jsonl: line 2 has no 'text' field"):
        prepare(DataSpec(str(corpus_dir)), out=out, workers=2, progress=False)
    assert _nothing_written(private_cache, out)


def test_an_out_directory_holding_other_data_is_not_overwritten(corpus_dir: Path, tmp_path: Path) -> None:
    out = prepare(DataSpec(str(corpus_dir)), out=tmp_path / "shards", progress=False)
    assert open_prepared(out).digest == json.loads((out / "meta.json").read_text())["digest"]
    with pytest.raises(ConfigError, match="holds other prepared data"):
        prepare(DataSpec(str(corpus_dir), val_fraction=0.3), out=out, progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not prepared data"):
        prepare(DataSpec(str(corpus_dir)), out=tmp_path / "junk", progress=False)
