"""Which files a source names, how text is read (the one rule for bad bytes), JSONL and parquet fields,
the content digest, and the tokenizers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from archbench.data import load_tokenizer, shards, sources
from archbench.errors import ConfigError


def test_a_directory_is_every_visible_file_in_relative_path_order(corpus_dir: Path) -> None:
    files = sources.resolve(str(corpus_dir))
    names = [f.name for f in files]
    assert len(files) == 40 and names == sorted(names) and not any(".hidden" in n for n in names)
    assert all(f.kind == sources.TEXT for f in files)
    assert any(n.startswith("sub/") for n in names)


def test_globs_and_file_lists(corpus_dir: Path) -> None:
    by_glob = sources.resolve(str(corpus_dir / "**" / "*.txt"))
    assert len(by_glob) == 40 and {f.name for f in by_glob} == {f.name for f in sources.resolve(str(corpus_dir))}
    two = sorted(corpus_dir.glob("*.txt"))[:2]
    listed = sources.resolve([str(two[1]), str(two[0]), str(two[1])])  # given order, each once
    assert [f.name for f in listed] == [two[1].name, two[0].name]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda t: str(t / "missing"), "data source not found"),
        (lambda t: str(t / "*.nothing"), "the pattern matches no files"),
        (lambda t: str((t / "empty").mkdir() or t / "empty"), "the directory holds no files"),
    ],
)
def test_sources_that_name_nothing_are_one_line(tmp_path: Path, make, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        sources.resolve(make(tmp_path))


def test_token_files_and_text_do_not_mix(tmp_path: Path) -> None:
    shards.write_shard(tmp_path / "a.bin", np.arange(10), 256)
    (tmp_path / "b.txt").write_text("hello")
    with pytest.raises(ConfigError, match=r"mix token files \(a.bin\) with text \(b.txt\)"):
        sources.resolve(str(tmp_path))


def test_undecodable_bytes_become_the_replacement_character(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 \xff\xfe ok")
    (doc,) = sources.text_documents(sources.resolve(str(tmp_path / "latin1.txt"))[0])
    assert doc.decode("utf-8") == "caf\ufffd \ufffd\ufffd ok"
    assert sources.utf8("déjà".encode()) == "déjà".encode()  # valid UTF-8 passes unchanged


def test_jsonl_reads_the_named_field_skips_nulls_and_splits_by_line_start(jsonl_file: Path) -> None:
    (f,) = sources.resolve(str(jsonl_file))
    whole = list(sources.jsonl_documents(f, "content", 0, f.size))
    ranges = sources.jsonl_ranges(f, 1000)
    assert len(ranges) > 3
    pieces = [d for a, b in ranges for d in sources.jsonl_documents(f, "content", a, b)]
    assert pieces == whole and whole.count(None) == 1  # every line exactly once, whatever the cut
    assert len(whole) == len(jsonl_file.read_text().splitlines())


def test_jsonl_without_the_field_names_the_line_and_the_fields(jsonl_file: Path) -> None:
    (f,) = sources.resolve(str(jsonl_file))
    with pytest.raises(ConfigError) as err:
        list(sources.jsonl_documents(f, "text", 0, f.size))
    assert str(err.value) == (
        "docs.jsonl: line 1 has no 'text' field (it has: id, content); name the text field with text_column"
    )


def test_parquet_text_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"body": ["first doc", None, "third doc"], "n": [1, 2, 3]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=2)
    (f,) = sources.resolve(str(tmp_path / "d.parquet"))
    groups = sources.parquet_row_groups(f, "body")
    docs = [d for g in range(groups) for d in sources.parquet_documents(f, "body", g)]
    assert groups == 2 and docs == [b"first doc", None, b"third doc"]
    with pytest.raises(ConfigError, match=r"no column 'text' \(columns: body, n\)"):
        sources.parquet_row_groups(f, "text")
    with pytest.raises(ConfigError, match="column 'n' holds int64, not text"):
        sources.parquet_row_groups(f, "n")


def test_the_content_digest_follows_content_not_location(corpus_dir: Path, tmp_path: Path) -> None:
    digest = sources.content(sources.resolve(str(corpus_dir))).digest
    copy = shutil.copytree(corpus_dir, tmp_path / "elsewhere")
    assert sources.content(sources.resolve(str(copy))).digest == digest
    target = sorted(copy.glob("*.txt"))[0]
    target.write_bytes(target.read_bytes()[:-1] + b"#")
    assert sources.content(sources.resolve(str(copy))).digest != digest


def test_an_unchanged_corpus_is_not_read_again_to_be_identified(corpus_dir: Path) -> None:
    first = sources.content(sources.resolve(str(corpus_dir))).digest
    target = sorted(corpus_dir.glob("*.txt"))[0]
    st = target.stat()
    raw = bytearray(target.read_bytes())
    raw[0] ^= 1  # same size, same mtime: only reading the bytes could tell
    target.write_bytes(bytes(raw))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sources.content(sources.resolve(str(corpus_dir))).digest == first  # the memo answered


def test_token_files_are_scanned_for_their_largest_id(tmp_path: Path) -> None:
    shards.write_shard(tmp_path / "a.bin", np.array([1, 2, 700]), 1024)
    np.save(tmp_path / "b.npy", np.array([5, 999, 3], dtype=np.uint16))
    assert sources.content(sources.resolve(str(tmp_path))).max_token == 999


def test_the_bytes_tokenizer_is_utf8(tmp_path: Path) -> None:
    tok = load_tokenizer("bytes")
    ids, counts = tok.encode_batch(["hé".encode(), b"x"])
    assert ids.tolist() == [104, 195, 169, 120] and counts == [3, 1]
    assert tok.decode(ids) == "hé".encode() + b"x" and tok.info.vocab_size == 256 and tok.info.eot is None


def test_a_trained_bpe_tokenizer_round_trips_and_marks_documents(bpe_tokenizer: Path) -> None:
    tok = load_tokenizer(str(bpe_tokenizer))
    text = "def spam(eggs):\n    return eggs * 2  # é\n"
    ids, counts = tok.encode_batch([text.encode(), text.encode()])
    assert tok.info.vocab_size == 512 and tok.info.eot == 0  # <|endoftext|> was trained as special token 0
    assert ids[0] == 0 and counts[0] == counts[1] and len(ids) == sum(counts)
    assert len(ids) < 2 * len(text.encode())  # merges happened
    assert tok.decode(ids[1 : counts[0]]) == text.encode()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not a tokenizer.json the tokenizers library can load"), (None, "tokenizer file not found")],
)
def test_a_tokenizer_that_does_not_load_is_one_line(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "tok.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_tokenizer(str(path))
    assert fragment in str(err.value) and "\n" not in str(err.value)
