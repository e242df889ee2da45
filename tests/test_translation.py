"""The translation task (a tab-separated corpus) and the numbers task (num2words)."""

from __future__ import annotations

import json

import pytest
import sacrebleu
from hypothesis import given
from hypothesis import strategies as st
from num2words import num2words

from conftest import run_s2s, tiny, write_toml
from s2s_core.errors import ConfigError, InputError
from s2s_plugins.numbers import NumbersParams, NumbersTask
from s2s_plugins.translation import (JOINER, TranslationParams, TranslationTask, detokenize,
                                     normalise, tokenize, word_tokens)


def corpus_task(tmp_path, content: str | bytes, name="corpus.tsv", **options) -> TranslationTask:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return TranslationTask(TranslationParams(corpus=str(path), **options))


# -- tokens ---------------------------------------------------------------------------

def test_word_tokens_split_punctuation_and_mark_what_it_touched():
    assert word_tokens("forty-two") == ["forty", f"{JOINER}-{JOINER}", "two"]
    assert word_tokens("Hello, world!") == ["Hello", f"{JOINER},", "world", f"{JOINER}!"]
    assert word_tokens("a ( b ) c") == ["a", "(", "b", ")", "c"]
    assert word_tokens("(quoted)") == [f"({JOINER}", "quoted", f"{JOINER})"]
    assert word_tokens("안녕, 세상") == ["안녕", f"{JOINER},", "세상"]
    assert detokenize(["forty", f"{JOINER}-{JOINER}", "two", f"{JOINER}."], "word") == "forty-two."


@given(st.text(alphabet=st.characters(blacklist_characters=JOINER, blacklist_categories=("Cs",))))
def test_tokens_join_back_to_the_normalised_text(text):
    for lowercase in (False, True):
        normalised = normalise(text, lowercase)
        for tokenizer in ("word", "char"):
            assert detokenize(tokenize(normalised, tokenizer), tokenizer) == normalised


# -- reading a corpus -----------------------------------------------------------------

def test_corpus_lines_columns_normalisation_and_split(tmp_path):
    lines = ["\ufeffGo.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272",  # BOM, extra column
             "Hi.\tSalut !\r",  # CRLF
             "",
             "  Run!   \t  Cours\u00a0!  ",  # surrounding and inner whitespace
             ] + [f"Line {i}.\tLigne {i}." for i in range(17)]
    task = corpus_task(tmp_path, "\n".join(lines) + "\n", lowercase=True, validation_fraction=0.2)
    train, valid = task.load_data(seed=5)
    assert (train, valid) == task.load_data(seed=5)
    assert task.load_data(seed=6) != (train, valid)
    assert len(train) == 16 and len(valid) == 4
    pairs = set(train + valid)
    assert {("go.", "va !"), ("hi.", "salut !"), ("run!", "cours !")} <= pairs
    assert len(pairs) == 20


def test_length_filter_and_separate_validation_file(tmp_path):
    (tmp_path / "valid.tsv").write_text("a b c\tx\na\tx y z w\nb\ty\n", encoding="utf-8")
    task = corpus_task(tmp_path, "a\tx\na b\tx y\na b c d\tx\n", source_tokenizer="word",
                       target_tokenizer="word", max_source_length=3, max_target_length=3,
                       validation_corpus=str(tmp_path / "valid.tsv"))
    train, valid = task.load_data(seed=0)
    assert sorted(train) == [("a", "x"), ("a b", "x y")]  # "a b c d" is 4 source tokens
    assert valid == [("a b c", "x"), ("b", "y")]  # "x y z w" is 4 target tokens


def test_validation_file_and_fraction_together_are_a_config_error(tmp_path):
    from s2s_core.config import parse_config
    from s2s_core.hooks import Registry

    data = tiny()
    data["task"] = {"type": "translation", "corpus": "c.tsv", "validation_corpus": "v.tsv",
                    "validation_fraction": 0.1}
    with pytest.raises(ConfigError, match=r"^t\.toml: task: give validation_corpus or "
                                          r"validation_fraction, not both$"):
        parse_config(data, "t.toml", Registry())


@pytest.mark.parametrize("content, message", [
    (b"a\tb\nno tab here\nc\td\n", r"corpus\.tsv:2: no tab; expected source<TAB>target"),
    (b"a\tb\n\nc\t\xe9t\xe9\n", r"corpus\.tsv:3: not UTF-8 text"),
    (b"a\tb\n \tb\n", r"corpus\.tsv:2: empty source"),
    (b"a\tb\nc\t  \n", r"corpus\.tsv:2: empty target"),
    (b"\n\n", r"corpus\.tsv: no sentence pairs in the file"),
    (b"a b c\tx\n", r"corpus\.tsv: no pairs left of 1: none has at most 2 source and 30 target"),
    (b"a\tb\n", r"corpus\.tsv: 1 pair\(s\) are too few to hold out a validation fraction"),
])
def test_corpus_problems_are_one_line_errors_naming_file_and_line(tmp_path, content, message):
    task = corpus_task(tmp_path, content, max_source_length=2)
    with pytest.raises(InputError, match=message) as info:
        task.load_data(seed=0)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "corpus.tsv"))


def test_missing_corpus_names_the_file(tmp_path):
    task = TranslationTask(TranslationParams(corpus=str(tmp_path / "nowhere.tsv")))
    with pytest.raises(InputError, match=r"nowhere\.tsv: cannot read corpus: No such file"):
        task.load_data(seed=0)


def test_relative_corpus_paths_are_taken_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = TranslationParams(corpus="data/c.tsv")
    assert params.corpus == str(tmp_path / "data" / "c.tsv")


# -- vocabularies and metrics -----------------------------------------------------------

def test_rare_tokens_become_unknown_and_are_reported(tmp_path):
    task = corpus_task(tmp_path, "the cat\tle chat\nthe dog\tle chien\nthe cat .\tle chat .\n",
                       min_count=2, lowercase=True)
    source_vocab, target_vocab = task.build_vocabularies(task.read_pairs(task.options.corpus))
    assert source_vocab.itos[3:] == ["<unk>", "the", "cat"]  # by count: the 3, cat 2
    assert target_vocab.itos[4:] == ["le", "chat"]
    ids, unknown = task.encode_source("The  zebra, the cat", source_vocab)
    assert unknown == ["zebra", ","]  # as the user wrote them: no joiners
    assert ids == [4, 3, 3, 4, 5]


def test_metrics_are_sacrebleus(tmp_path):
    task = corpus_task(tmp_path, "a\tb\n")
    hypotheses = ["the cat sat on the mat", "a dog", "hello"]
    references = ["the cat sat on the mat", "the dog", "hello"]
    metrics = task.metrics(hypotheses, references)
    assert metrics["exact_match"] == pytest.approx(2 / 3)
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert 0 < metrics["bleu"] < 100
    assert task.metrics(references, references)["bleu"] == pytest.approx(100)


# -- the numbers task -------------------------------------------------------------------

def test_numbers_are_num2words_pairs_reproducible_from_the_seed():
    task = NumbersTask(NumbersParams(digits=3, pairs=400))
    train, valid = task.load_data(seed=2)
    assert (train, valid) == task.load_data(seed=2)
    assert len(train) == 380 and len(valid) == 20
    english = {num2words(n): n for n in range(1000)}
    for source, target in train + valid:
        assert num2words(english[source], lang="ko") == target
    assert len(set(train + valid)) == 400
    assert not set(train) & set(valid)


def test_numbers_that_do_not_fit_the_model_are_an_error_naming_the_option():
    task = NumbersTask(NumbersParams(digits=4, pairs=2000, max_source_length=5))
    with pytest.raises(ConfigError, match=r"task\.max_source_length: 5 is too short for \d+ "):
        task.load_data(seed=0)


def test_numbers_in_other_languages():
    task = NumbersTask(NumbersParams(digits=2, pairs=40, source_language="fr", target_language="de",
                                     target_tokenizer="word", bleu_tokenize="13a"))
    train, valid = task.load_data(seed=0)
    french = {num2words(n, lang="fr"): n for n in range(100)}
    assert all(num2words(french[fr], lang="de") == de for fr, de in train + valid)
    assert ("quarante-deux", "zweiundvierzig") in [task.pair(42)]


# -- a real run -------------------------------------------------------------------------

def test_translation_run_learns_and_predict_maps_unknown_words(tmp_path, cli):
    """English number words -> Korean, read from a file through `s2s run` and `s2s predict`."""
    corpus = tmp_path / "numbers.tsv"
    corpus.write_text("".join(f"{num2words(n)}\t{num2words(n, lang='ko')}\tn={n}\n" for n in range(1000)),
                      encoding="utf-8")
    data = tiny(model={"encoder": {"embedding": 16}, "decoder": {"embedding": 16}},
                training={"epochs": 5, "batch_size": 32, "optimizer_params": {"learning_rate": 0.01}})
    data["task"] = {"type": "translation", "corpus": "numbers.tsv", "source_tokenizer": "word",
                    "target_tokenizer": "char", "max_source_length": 7, "max_target_length": 8,
                    "bleu_tokenize": "char", "validation_fraction": 0.1}
    config = write_toml(tmp_path / "numbers.toml", data)
    proc = run_s2s("run", config, "--out", "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / proc.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"exact_match", "bleu", "chrf"} <= set(rows[-1])
    # Guessing characters gets nowhere near this; the model has to read the words
    # (measured: BLEU 97.9 after two epochs, 100 from the fourth).
    assert max(r["bleu"] for r in rows) > 80 and max(r["chrf"] for r in rows) > 80
    assert f'corpus = "{corpus}"' in (run_dir / "config.toml").read_text(encoding="utf-8")

    corpus.unlink()  # prediction needs only the run directory
    result = cli("predict", run_dir, "forty-two", "forty-two zebras", "a b c d e f g h")
    assert result.exit_code == 2
    outputs = result.stdout.splitlines()
    assert outputs[0] == "사십이" and outputs[1] and outputs[2] == ""
    assert result.stderr.splitlines() == [
        "warning: input 2: unknown tokens mapped to <unk>: 'zebras'",
        "error: input 3: 'a b c d e f g h': 8 tokens, longer than the 7 this model accepts"]
