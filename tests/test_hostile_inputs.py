"""Hostile expressions: each gets an answer or a one-line error, and never stops the others.

Property-based over arbitrary Unicode, empty and very long lines, tabs, carriage returns
and bytes that are not UTF-8, in-process on ``predict`` and through ``s2s predict``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_core.predict import predict
from s2s_core.rundir import load_run

GOOD = ["12+34", "5+5", "99+99", " 7 +\t8 ", "0+0"]

hostile_texts = st.one_of(
    st.text(),  # arbitrary Unicode (no lone surrogates)
    st.text(alphabet="0123456789+ \t\r\x0b\x0c\u00a0\u2028\u3000", max_size=30),  # digits and odd spaces
    st.sampled_from(["", " ", "\t", "\r", "+", "1+", "+1", "1++1", "１+２", "1+1\x00", "\udce9+1"]),
    st.integers(1, 20_000).map(lambda n: "1" * n + "+1"),  # very long lines
    st.text(max_size=5).map(lambda t: t * 4000),
)


@pytest.fixture(scope="module")
def run(trained_run):
    return load_run(trained_run.run_dir)


@pytest.fixture(scope="module")
def good_answers(run):
    return {text: answer.output for text, answer in zip(GOOD, predict(run, GOOD))}


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(hostile_texts, max_size=8), good=st.lists(st.sampled_from(GOOD), max_size=4),
       seed=st.randoms())
def test_every_input_gets_an_answer_or_one_error_line(run, good_answers, texts, good, seed):
    texts = texts + good
    seed.shuffle(texts)
    answers = predict(run, texts)
    assert [a.text for a in answers] == texts
    for answer in answers:
        if answer.error is None:
            assert isinstance(answer.output, str)
        else:
            assert answer.output is None
            assert answer.error and not any(c in answer.error for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
            assert len(answer.error) < 300
        if answer.text in good_answers:  # the bad ones did not change the good ones' answers
            assert answer.output == good_answers[answer.text]


@settings(max_examples=15, deadline=None,  # the cli fixture is a stateless runner
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.sampled_from(GOOD), hostile_texts.filter(lambda t: "\n" not in t)),
                      min_size=1, max_size=6))
def test_stdin_gives_one_output_line_per_input_line(trained_run, good_answers, cli, lines):
    result = cli("predict", trained_run.run_dir, input="\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines), (lines, result.stdout)
    errors = result.stderr.splitlines()
    assert all(line.startswith(("error: line ", "warning: ")) for line in errors)
    assert result.exit_code == (2 if any(e.startswith("error:") for e in errors) else 0)
    for text, answer in zip(lines, out):
        if text in good_answers:
            assert answer == good_answers[text]


def test_hostile_bytes_on_a_real_stdin(trained_run, good_answers):
    """Not UTF-8, a carriage return inside a line, CRLF, an empty line, a NUL, a
    100,000-character line, no newline at the end: on the process's own stdin, read as
    strict UTF-8 (PYTHONIOENCODING), as under a desktop's UTF-8 locale."""
    stdin = b"12+34\n\xe9+2\n3\r+4\n5+5\r\n\n1\x00+1\n" + b"9" * 100_000 + b"+1\n99+99"
    proc = subprocess.run([sys.executable, "-m", "s2s_core", "predict", str(trained_run.run_dir)],
                          input=stdin, capture_output=True, timeout=300,
                          env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert "Traceback" not in stderr
    out = stdout.split("\n")
    assert len(out) == 9 and out[-1] == "", stdout
    assert out[0] == good_answers["12+34"] and out[3] == good_answers["5+5"] and out[7] == good_answers["99+99"]
    assert out[2] != ""  # "3\r+4": to the addition task a carriage return is a space
    assert out[1] == out[4] == out[5] == out[6] == ""
    errors = stderr.splitlines()
    assert [e.split(":")[1].strip() for e in errors] == ["line 2", "line 5", "line 6", "line 7"]
    assert errors[0] == "error: line 2: '\\udce9+2': not UTF-8 text (byte 0xe9)"
    assert errors[1] == "error: line 5: '': empty input"
    assert errors[3].endswith("100002 tokens, longer than the 5 this model accepts")
    assert proc.returncode == 2
