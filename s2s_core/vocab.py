"""Vocabularies: token <-> id, with the special tokens every model shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


class Vocabulary:
    """Ids 0, 1, 2 are padding, start and end; id 3 is ``<unk>`` when ``unk`` is on.

    Without ``unk`` a token outside the vocabulary is an error (the addition task:
    a character the calculator never saw); with it, it maps to ``<unk>`` (translation).
    """

    def __init__(self, tokens: Iterable[str], unk: bool = False):
        specials = [PAD, BOS, EOS] + ([UNK] if unk else [])
        self.itos: list[str] = specials + [t for t in tokens if t not in specials]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")
        self.unk_id: int | None = 3 if unk else None

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos and self.unk_id == other.unk_id

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """The tokens of ``tokens`` that are not in the vocabulary, in order, once each."""
        return list(dict.fromkeys(t for t in tokens if t not in self.stoi))

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to ``<unk>`` (KeyError without one)."""
        if self.unk_id is None:
            return [self.stoi[t] for t in tokens]
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to (not including) the first end token; padding and start are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID) or not 0 <= i < len(self.itos):
                continue
            out.append(self.itos[i])
        return out

    def to_dict(self) -> dict:
        return {"tokens": self.itos, "unk": self.unk_id is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        tokens, unk = data["tokens"], bool(data["unk"])
        specials = [PAD, BOS, EOS] + ([UNK] if unk else [])
        if not isinstance(tokens, list) or tokens[:len(specials)] != specials \
                or not all(isinstance(t, str) for t in tokens):
            raise ValueError("tokens must be a list of strings starting with the special tokens")
        return cls(tokens[len(specials):], unk=unk)
