"""The ``numbers`` task: translation of number words, a corpus generated with num2words.

"three hundred and forty-two" -> "삼백사십이" (English to Korean by default; any two
languages num2words writes). Nothing is downloaded: the pairs are made from the seed,
so the same seed gives the same corpus. Everything else (tokenisation, vocabularies,
BLEU and chrF) is the translation task's.
"""

from __future__ import annotations

import random

import attrs
from attrs import validators as v
from num2words import CONVERTER_CLASSES, num2words

from s2s_core.errors import ConfigError
from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Pair

from .translation import BLEU_TOKENIZERS, TOKENIZERS, TextOptions, TranslationTask, split_off_validation

LANGUAGES = tuple(sorted(CONVERTER_CLASSES))


@attrs.define(kw_only=True)
class NumbersParams(TextOptions):
    source_language: str = attrs.field(default="en", validator=v.in_(LANGUAGES))
    target_language: str = attrs.field(default="ko", validator=v.in_(LANGUAGES))
    #: Numbers have 1..digits digits; the count is drawn first (as the addition task's
    #: operands), so short numbers are common.
    digits: int = attrs.field(default=9, validator=[v.ge(1), v.le(9)])
    #: Distinct numbers generated.
    pairs: int = attrs.field(default=30_000, validator=[v.ge(2), v.le(1_000_000)])
    validation_fraction: float = attrs.field(default=0.05, validator=[v.gt(0.0), v.lt(1.0)])
    # English words in, Korean characters out: the defaults suit en -> ko with 9 digits
    # (at most 22 English tokens, 20 Korean characters).
    source_tokenizer: str = attrs.field(default="word", validator=v.in_(TOKENIZERS))
    target_tokenizer: str = attrs.field(default="char", validator=v.in_(TOKENIZERS))
    max_source_length: int = attrs.field(default=22, validator=[v.ge(1), v.le(1000)])
    max_target_length: int = attrs.field(default=20, validator=[v.ge(1), v.le(1000)])
    #: A Korean number is at most three words (one per 억 and 만 group): word BLEU
    #: finds no 4-grams and is 0 on this corpus, so BLEU reads characters.
    bleu_tokenize: str = attrs.field(default="char", validator=v.in_(BLEU_TOKENIZERS))

    def __attrs_post_init__(self):
        if self.pairs > 10 ** self.digits // 2:
            raise ValueError(f"pairs: {self.pairs} is too many for digits = {self.digits} "
                             f"(at most {10 ** self.digits // 2})")


def draw_numbers(count: int, digits: int, rng: random.Random) -> list[int]:
    """``count`` distinct numbers, each drawn as a digit count, then a number of that many."""
    drawn: dict[int, None] = {}  # ordered: the draw order decides the validation split
    while len(drawn) < count:
        length = rng.randint(1, digits)
        low = 0 if length == 1 else 10 ** (length - 1)
        drawn.setdefault(rng.randrange(low, 10 ** length), None)
    return list(drawn)


class NumbersTask(TranslationTask):
    """Number words in one language -> the same number in another."""

    Params = NumbersParams

    def load_data(self, seed: int) -> tuple[list[Pair], list[Pair]]:
        o = self.options
        pairs = [self.pair(n) for n in draw_numbers(o.pairs, o.digits, random.Random(seed))]
        return split_off_validation(pairs, o.validation_fraction, "task.pairs")

    def pair(self, number: int) -> Pair:
        """The number in words in both languages; a model too short for it is an error."""
        source, target = (self.normalise(self.words(number, language))
                          for language in (self.options.source_language, self.options.target_language))
        for side, text, tokens, limit in (
                ("source", source, self.source_tokens(source), self.max_source_length),
                ("target", target, self.target_tokens(target), self.max_target_length)):
            if len(tokens) > limit:
                raise ConfigError(f"task.max_{side}_length: {limit} is too short for {number} "
                                  f"({text!r} is {len(tokens)} tokens)")
        return source, target

    @staticmethod
    def words(number: int, language: str) -> str:
        try:
            return num2words(number, lang=language)
        except Exception as exc:  # noqa: BLE001 - num2words raises what each language's code does
            raise ConfigError(f"task: num2words cannot write {number} in '{language}': "
                              f"{type(exc).__name__}: {exc}") from None


@hookimpl
def s2s_tasks():
    return {"numbers": NumbersTask}
