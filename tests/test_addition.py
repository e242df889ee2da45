"""The addition task's data, as the seed describes it."""

from __future__ import annotations

import pytest

from s2s_core.errors import InputError
from s2s_plugins.addition import AdditionParams, AdditionTask


def make(**kwargs) -> AdditionTask:
    return AdditionTask(AdditionParams(**kwargs))


def test_data_is_reproducible_from_the_seed_and_split():
    task = make(digits=3, questions=5000, validation_fraction=0.1)
    train, valid = task.load_data(7)
    assert (train, valid) == task.load_data(7)
    assert task.load_data(8) != (train, valid)
    assert len(train) == 4500 and len(valid) == 500


def test_questions_are_unique_unordered_pairs_with_correct_sums():
    task = make(digits=3, questions=5000)
    train, valid = task.load_data(1)
    seen = set()
    lengths = set()
    for question, answer in train + valid:
        a, b = question.split("+")
        lengths.update((len(a), len(b)))
        assert int(answer) == int(a) + int(b)
        key = frozenset((int(a), int(b))) if a != b else (int(a),)
        assert key not in seen
        seen.add(key)
    assert lengths == {1, 2, 3}


def test_digit_count_is_drawn_first():
    # Drawing the digit count first makes short operands common (uniform numbers
    # below 1000 would give 1% one-digit and 9% two-digit operands), even after
    # repeated pairs are dropped.
    train, _ = make(digits=3, questions=20000).load_data(0)
    operands = [x for q, _ in train for x in q.split("+")]
    one = sum(len(x) == 1 for x in operands) / len(operands)
    two = sum(len(x) == 2 for x in operands) / len(operands)
    assert 0.1 < one < 0.3 and 0.25 < two < 0.45


def test_source_encoding_checks_characters_and_form():
    task = make(digits=2, questions=1000)
    vocab, _ = task.build_vocabularies([])
    ids, unknown = task.encode_source("12 + 3", vocab)
    assert len(ids) == 4 and unknown == []
    with pytest.raises(InputError, match=r"'1x\+2': not in the vocabulary: 'x'"):
        task.encode_source("1x+2", vocab)
    with pytest.raises(InputError, match="longer than the 5 this model accepts"):
        task.encode_source("123+456", vocab)
    with pytest.raises(InputError, match="expected a\\+b"):
        task.encode_source("1++2", vocab)
    with pytest.raises(InputError, match="empty input"):
        task.encode_source("   ", vocab)


def test_reverse_feeds_the_question_backwards():
    task = make(reverse=True)
    assert task.source_tokens("12+345") == list("543+21")
    assert task.source_text(task.source_tokens("12+345")) == "12+345"


def test_fixed_padded_lengths_as_the_seed():
    task = make(digits=3, questions=1000, source_length=9, target_length=8)
    assert (task.max_source_length, task.max_target_length) == (9, 8)
    vocab, _ = task.build_vocabularies([])
    ids, _ = task.encode_source("1+2", vocab)
    assert len(ids) == 3  # padding to 9 happens when batches are built
    default = make(digits=3, questions=1000)
    assert (default.max_source_length, default.max_target_length) == (7, 4)
    with pytest.raises(ValueError, match="source_length: 6 is too short for digits = 3 \\(at least 7, or 0\\)"):
        make(digits=3, questions=1000, source_length=6)
    with pytest.raises(ValueError, match="target_length: 3 is too short"):
        make(digits=3, questions=1000, target_length=3)
