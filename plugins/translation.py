"""The ``translation`` task: sentence pairs from a tab-separated parallel corpus.

One pair per line, ``source<TAB>target``, further columns ignored (Tatoeba's format),
UTF-8. Texts are normalised (runs of whitespace become one space, optionally
lower-cased), tokenised by character or by word, and pairs longer than the model's
fixed lengths are dropped. Vocabularies come from the training side; rarer tokens
map to ``<unk>``. Metrics are exact match and sacrebleu's corpus BLEU and chrF.

Only training reads the corpus: ``s2s predict`` rebuilds the task from the run's
config.toml and takes its vocabularies from vocab.json, so a run keeps working after
the corpus has moved. A relative corpus path is taken from the working directory of
``s2s run`` and recorded absolute in the run's config.toml.
"""

from __future__ import annotations

import collections
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path

import attrs
from attrs import validators as v
from sacrebleu.metrics import BLEU, CHRF

from s2s_core.errors import InputError
from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Pair, Task, exact_match
from s2s_core.vocab import Vocabulary

TOKENIZERS = ("char", "word")
#: sacrebleu's BLEU tokenisers that need nothing beyond sacrebleu itself ("char" suits
#: languages written without spaces; the mecab and sentencepiece ones need downloads).
BLEU_TOKENIZERS = ("13a", "intl", "char", "zh", "none")

#: Marks the side(s) on which a punctuation token touched its neighbour, so that word
#: tokens join back exactly (OpenNMT's "joiner"): "forty-two" -> forty ￭-￭ two.
JOINER = "\uffed"
_WORD_OR_PUNCTUATION = re.compile(r"(?P<word>\w+)|(?P<punctuation>[^\w\s])")


def normalise(text: str, lowercase: bool = False) -> str:
    """One space between words, none at the ends; lower case if asked."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def word_tokens(text: str) -> list[str]:
    """Runs of letters and digits, and single punctuation marks carrying joiners.

    ``word_text(word_tokens(t)) == t`` for normalised ``t``.
    """
    tokens = []
    for match in _WORD_OR_PUNCTUATION.finditer(text):
        token = match.group()
        if match.lastgroup == "punctuation":
            start, end = match.span()
            if start > 0 and not text[start - 1].isspace():
                token = JOINER + token
            if end < len(text) and not text[end].isspace():
                token = token + JOINER
        tokens.append(token)
    return tokens


def word_text(tokens: Sequence[str]) -> str:
    """Word tokens back to text: a space between tokens unless a joiner says otherwise."""
    pieces, glued = [], True  # nothing before the first token
    for token in tokens:
        if not (glued or token.startswith(JOINER)):
            pieces.append(" ")
        pieces.append(token.strip(JOINER))
        glued = token.endswith(JOINER)
    return "".join(pieces)


def tokenize(text: str, tokenizer: str) -> list[str]:
    return word_tokens(text) if tokenizer == "word" else list(text)


def detokenize(tokens: Sequence[str], tokenizer: str) -> str:
    return word_text(tokens) if tokenizer == "word" else "".join(tokens)


def _absolute_path(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


@attrs.define(kw_only=True)
class TextOptions:
    """Options every task built on :class:`TranslationTask` shares."""

    #: "char" or "word" (runs of letters and digits; each punctuation mark apart).
    source_tokenizer: str = attrs.field(default="word", validator=v.in_(TOKENIZERS))
    target_tokenizer: str = attrs.field(default="word", validator=v.in_(TOKENIZERS))
    lowercase: bool = False
    #: The model's fixed lengths, in tokens; longer pairs are left out of the data.
    max_source_length: int = attrs.field(default=30, validator=[v.ge(1), v.le(1000)])
    max_target_length: int = attrs.field(default=30, validator=[v.ge(1), v.le(1000)])
    #: Tokens seen fewer times on the training side map to <unk>.
    min_count: int = attrs.field(default=1, validator=[v.ge(1), v.le(1_000_000)])
    #: How sacrebleu splits texts into words for BLEU (chrF reads characters).
    bleu_tokenize: str = attrs.field(default="13a", validator=v.in_(BLEU_TOKENIZERS))


@attrs.define(kw_only=True)
class TranslationParams(TextOptions):
    #: Tab-separated UTF-8 file of source<TAB>target lines.
    corpus: str = attrs.field(converter=_absolute_path)
    #: A separate validation file; without one, validation_fraction of the corpus
    #: (0.1 when not given) is held out.
    validation_corpus: str | None = attrs.field(default=None, converter=_absolute_path)
    validation_fraction: float | None = attrs.field(
        default=None, validator=v.optional(v.and_(v.gt(0.0), v.lt(1.0))))

    def __attrs_post_init__(self):
        if self.validation_corpus is not None and self.validation_fraction is not None:
            raise ValueError("give validation_corpus or validation_fraction, not both")


def read_corpus(path: str) -> list[tuple[int, str, str]]:
    """(line number, source, target) of every non-blank line of a tab-separated file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read corpus: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start} of the file)") from None
    rows = []
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise InputError(f"{path}:{number}: no tab; expected source<TAB>target")
        rows.append((number, columns[0], columns[1]))
    return rows


def split_off_validation(pairs: list[Pair], fraction: float, where: str) -> tuple[list[Pair], list[Pair]]:
    """The last ``fraction`` of ``pairs`` (at least one) for validation, the rest for training."""
    n_valid = max(1, round(len(pairs) * fraction))
    if n_valid >= len(pairs):
        raise InputError(f"{where}: {len(pairs)} pair(s) are too few to hold out a "
                         f"validation fraction of {fraction}")
    return pairs[:-n_valid], pairs[-n_valid:]


class TranslationTask(Task):
    """Source sentence -> target sentence, tokenised by character or by word."""

    Params = TranslationParams
    primary_metric = "bleu"

    def __init__(self, params):
        super().__init__(params)
        self.bleu = BLEU(tokenize=params.bleu_tokenize)
        self.chrf = CHRF()

    @property
    def max_source_length(self) -> int:
        return self.options.max_source_length

    @property
    def max_target_length(self) -> int:
        return self.options.max_target_length

    # -- data -------------------------------------------------------------------------
    def load_data(self, seed: int) -> tuple[list[Pair], list[Pair]]:
        o = self.options
        pairs = self.read_pairs(o.corpus)
        random.Random(seed).shuffle(pairs)
        if o.validation_corpus is None:
            fraction = 0.1 if o.validation_fraction is None else o.validation_fraction
            return split_off_validation(pairs, fraction, o.corpus)
        return pairs, self.read_pairs(o.validation_corpus)

    def read_pairs(self, path: str) -> list[Pair]:
        """Normalised pairs of a corpus file that fit the model's lengths."""
        pairs = []
        rows = read_corpus(path)
        if not rows:
            raise InputError(f"{path}: no sentence pairs in the file")
        for number, source, target in rows:
            source, target = self.normalise(source), self.normalise(target)
            if not source or not target:
                side = "source" if not source else "target"
                raise InputError(f"{path}:{number}: empty {side}")
            if self.fits(source, target):
                pairs.append((source, target))
        if not pairs:
            raise InputError(f"{path}: no pairs left of {len(rows)}: none has at most "
                             f"{self.max_source_length} source and {self.max_target_length} "
                             f"target tokens")
        return pairs

    def fits(self, source: str, target: str) -> bool:
        return (len(self.source_tokens(source)) <= self.max_source_length
                and len(self.target_tokens(target)) <= self.max_target_length)

    def normalise(self, text: str) -> str:
        return normalise(text, self.options.lowercase)

    # -- tokens -----------------------------------------------------------------------
    def source_tokens(self, text: str) -> list[str]:
        return tokenize(self.normalise(text), self.options.source_tokenizer)

    def target_tokens(self, text: str) -> list[str]:
        return tokenize(self.normalise(text), self.options.target_tokenizer)

    def encode_source(self, text: str, vocab: Vocabulary) -> tuple[list[int], list[str]]:
        ids, unknown = super().encode_source(text, vocab)
        # Unknown tokens are reported to the user: as written, without joiners.
        return ids, list(dict.fromkeys(token.strip(JOINER) for token in unknown))

    def source_text(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, self.options.source_tokenizer)

    def target_text(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, self.options.target_tokenizer)

    def build_vocabularies(self, train: Sequence[Pair]) -> tuple[Vocabulary, Vocabulary]:
        sources = collections.Counter(t for s, _ in train for t in self.source_tokens(s))
        targets = collections.Counter(t for _, t in train for t in self.target_tokens(t))
        return self.frequent(sources), self.frequent(targets)

    def frequent(self, counts: collections.Counter) -> Vocabulary:
        """Tokens seen at least min_count times, most frequent first; <unk> for the rest."""
        kept = sorted((t for t, n in counts.items() if n >= self.options.min_count),
                      key=lambda t: (-counts[t], t))
        return Vocabulary(kept, unk=True)

    # -- results ----------------------------------------------------------------------
    def metrics(self, hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """Exact match (0-1), and sacrebleu's corpus BLEU and chrF (0-100)."""
        if not references:
            return {"exact_match": 0.0, "bleu": 0.0, "chrf": 0.0}
        hypotheses, references = list(hypotheses), [list(references)]
        return {"exact_match": exact_match(hypotheses, references[0]),
                "bleu": self.bleu.corpus_score(hypotheses, references).score,
                "chrf": self.chrf.corpus_score(hypotheses, references).score}

    def format_sample(self, source: str, prediction: str, truth: str) -> str:
        return f"{source} -> {prediction} ({truth})"


@hookimpl
def s2s_tasks():
    return {"translation": TranslationTask}
