"""The ``addition`` task: the seed's calculator, "123+456" -> "579"."""

from __future__ import annotations

import random
import re

import attrs
from attrs import validators as v

from s2s_core.errors import InputError, S2SError
from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Pair, Task
from s2s_core.vocab import Vocabulary

SYMBOLS = "0123456789+"


def unique_pairs(digits: int) -> int:
    """How many unordered pairs {a, b} of numbers below 10**digits exist."""
    n = 10 ** digits
    return n * (n + 1) // 2


@attrs.define
class AdditionParams:
    #: Operands have 1..digits digits (the count is drawn first, as in the seed).
    digits: int = attrs.field(default=3, validator=[v.ge(1), v.le(9)])
    #: Unique questions generated (a+b and b+a count once).
    questions: int = attrs.field(default=50_000, validator=[v.ge(2), v.le(10_000_000)])
    #: Share of the questions held out for validation.
    validation_fraction: float = attrs.field(default=0.1, validator=[v.gt(0.0), v.lt(1.0)])
    #: Feed the question right to left (helps models without attention).
    reverse: bool = False
    #: Fixed padded lengths of the question and of the answer (before the end token);
    #: 0: as long as the longest possible. The seed pads "S123+456E" to 9 positions and
    #: makes the decoder run as many steps.
    source_length: int = attrs.field(default=0, validator=[v.ge(0), v.le(1000)])
    target_length: int = attrs.field(default=0, validator=[v.ge(0), v.le(1000)])

    def __attrs_post_init__(self):
        if self.questions > unique_pairs(self.digits) * 3 // 5:
            raise ValueError(f"questions: {self.questions} is too many for digits = {self.digits} "
                             f"(at most {unique_pairs(self.digits) * 3 // 5})")
        for name, needed in (("source_length", 2 * self.digits + 1), ("target_length", self.digits + 1)):
            value = getattr(self, name)
            if 0 < value < needed:
                raise ValueError(f"{name}: {value} is too short for digits = {self.digits} "
                                 f"(at least {needed}, or 0)")


class AdditionTask(Task):
    """Sums of two non-negative integers of 1..``digits`` digits, character by character."""

    Params = AdditionParams

    @property
    def max_source_length(self) -> int:
        return self.options.source_length or 2 * self.options.digits + 1

    @property
    def max_target_length(self) -> int:
        return self.options.target_length or self.options.digits + 1

    def load_data(self, seed: int) -> tuple[list[Pair], list[Pair]]:
        rng = random.Random(seed)
        digits, seen, pairs = self.options.digits, set(), []

        def operand() -> int:
            length = rng.randint(1, digits)
            return int("".join(rng.choice("0123456789") for _ in range(length)))

        draws_left = 100 * self.options.questions
        while len(pairs) < self.options.questions:
            draws_left -= 1
            if draws_left < 0:
                raise S2SError(f"task.questions: found only {len(pairs)} unique questions with "
                               f"digits = {digits}; ask for fewer")
            a, b = operand(), operand()
            key = (min(a, b), max(a, b))
            if key in seen:
                continue
            seen.add(key)
            pairs.append((f"{a}+{b}", str(a + b)))
        n_valid = max(1, round(len(pairs) * self.options.validation_fraction))
        return pairs[:-n_valid], pairs[-n_valid:]

    def build_vocabularies(self, train):
        # Fixed, not learned from the data: every digit is valid input even if unseen.
        return Vocabulary(SYMBOLS), Vocabulary(SYMBOLS[:10])

    def source_tokens(self, text: str) -> list[str]:
        tokens = list("".join(text.split()))  # spaces are allowed: "12 + 3"
        return tokens[::-1] if self.options.reverse else tokens

    def source_text(self, tokens) -> str:
        return "".join(tokens[::-1] if self.options.reverse else tokens)

    def encode_source(self, text: str, vocab: Vocabulary):
        ids, unknown = super().encode_source(text, vocab)
        digits = self.options.digits
        if not re.fullmatch(rf"\d{{1,{digits}}}\+\d{{1,{digits}}}", "".join(text.split())):
            raise InputError(f"{text!r}: expected a+b with operands of 1 to {digits} digits")
        return ids, unknown


@hookimpl
def s2s_tasks():
    return {"addition": AdditionTask}
