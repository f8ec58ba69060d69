"""Tokenizers: ``bytes`` (the UTF-8 bytes, vocabulary 256) or a Hugging Face ``tokenizer.json``.

Both turn a batch of documents into one token array and back, and have a ``digest`` (a hash of what
defines them: the file's bytes for a ``tokenizer.json``) that keys the prepared-data cache and enters the
data's identity. A ``tokenizer.json`` is loaded with the ``tokenizers`` library; documents are encoded
without the tokenizer's own special tokens (no ``[CLS]`` per document), and each document is preceded by
the end-of-text token when the tokenizer has one of :data:`EOT_NAMES` as a special token (as nanoGPT's and
llm.c's FineWeb preparation do with GPT-2's ``<|endoftext|>``), so the model sees where documents begin.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from archbench.errors import ConfigError

EOT_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>")


@dataclass(frozen=True)
class TokenizerInfo:
    """What prepared data records about its tokenizer (``meta.json``'s ``tokenizer``)."""

    kind: str  # "bytes" | "hf"
    digest: str
    vocab_size: int
    eot: int | None  # the token that precedes each document; None: documents are joined as they are
    source: str  # "bytes" or the path it was loaded from


class ByteTokenizer:
    """Each UTF-8 byte is a token (vocabulary 256); documents are concatenated as they are."""

    info = TokenizerInfo("bytes", hashlib.sha256(b"archbench bytes tokenizer v1").hexdigest()[:16], 256, None, "bytes")

    def encode_batch(self, docs: Sequence[bytes]) -> tuple[np.ndarray, list[int]]:
        """The tokens of ``docs`` (UTF-8 encoded text) joined, and each document's token count."""
        return np.frombuffer(b"".join(docs), dtype=np.uint8), [len(d) for d in docs]

    def decode(self, tokens: np.ndarray) -> bytes:
        return np.asarray(tokens, dtype=np.uint8).tobytes()


class HFTokenizer:
    """A ``tokenizer.json`` (BPE, WordPiece, Unigram, ...) through the ``tokenizers`` library."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        raw = _read(path)
        try:
            self.tok = Tokenizer.from_str(raw.decode("utf-8"))
        except Exception as exc:  # the library raises its own Exception subclass with a serde message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            msg = f"tokenizer {path}: not a tokenizer.json the tokenizers library can load ({first})"
            raise ConfigError(msg) from None
        vocab = self.tok.get_vocab_size(with_added_tokens=True)
        specials = {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}
        eot = next((specials[n] for n in EOT_NAMES if n in specials), None)
        self.info = TokenizerInfo("hf", hashlib.sha256(raw).hexdigest()[:16], vocab, eot, str(path))

    def encode_batch(self, docs: Sequence[bytes]) -> tuple[np.ndarray, list[int]]:
        texts = [d.decode("utf-8") for d in docs]  # already valid UTF-8 (see sources.decode)
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets, which are not kept here
        encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)
        encs = encode(texts, add_special_tokens=False)
        head = [] if self.info.eot is None else [np.array([self.info.eot], dtype=np.int64)]
        parts = [np.array(e.ids, dtype=np.int64) for e in encs]
        counts = [len(p) + len(head) for p in parts]
        joined = [a for p in parts for a in (*head, p)]
        return (np.concatenate(joined) if joined else np.zeros(0, dtype=np.int64)), counts

    def decode(self, tokens: np.ndarray) -> bytes:
        return self.tok.decode([int(t) for t in tokens], skip_special_tokens=False).encode("utf-8")


Tokenizer = ByteTokenizer | HFTokenizer


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"tokenizer file not found: {path} (give bytes or a tokenizer.json)") from None
    except IsADirectoryError:
        raise ConfigError(f"tokenizer {path} is a directory: give its tokenizer.json file") from None
    except OSError as exc:
        raise ConfigError(f"tokenizer {path}: cannot read it ({exc.strerror})") from None


def load_tokenizer(spec: str | os.PathLike[str] | None) -> Tokenizer:
    """``bytes`` (or None) or the path of a ``tokenizer.json``; loaded once per process and file state."""
    if spec is None or str(spec) == "bytes":
        return ByteTokenizer()
    path = Path(spec).expanduser().resolve()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"tokenizer file not found: {spec} (give bytes or a tokenizer.json)") from None
    return _load(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _load(path: str, size: int, mtime_ns: int) -> HFTokenizer:
    return HFTokenizer(Path(path))


def describe(info: TokenizerInfo | dict[str, Any]) -> str:
    """``bytes`` or ``hf tok.json (vocab 4096, digest ...)`` for messages and ``data show``."""
    d = info if isinstance(info, dict) else info.__dict__
    if d["kind"] == "bytes":
        return "bytes (vocab 256)"
    return f"{Path(d['source']).name} (vocab {d['vocab_size']}, digest {d['digest']})"
