"""s2s against the seed notebook's way of doing things, side by side in one run.

    python benchmarks/performance.py            # the whole table (about 10 minutes on 2 cores)
    python benchmarks/performance.py --quick    # fewer batches and combinations (about 3 minutes)

Prints a Markdown table of figures and ratios; docs/performance.md explains them. Each
part runs in a child process so that its OpenMP thread count is set before MXNet loads:
s2s's own setting (one thread, MXNet's default on this machine, what the notebook ran
with). Both sides of every ratio come from the same child, the same data and the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_TASK = ROOT / "tasks" / "addition_seed.toml"
MAIN_TASK = ROOT / "tasks" / "addition.toml"
DECODE_QUESTIONS = 10_000
EVAL_QUESTIONS = 512
#: Hybridized vs imperative, per combination and mode: training batches and decoded
#: questions ({quick: ...}), cut into rounds that alternate the modes.
HYBRID_BATCHES = {False: 64, True: 16}
HYBRID_QUESTIONS = {False: 24_000, True: 4000}
HYBRID_ROUNDS = 8


# -- parts, each run in its own child process ------------------------------------------

def part_seed(batches: int, baseline_questions: int) -> dict:
    """Training steps of the seed architecture, notebook vs s2s; decoding speeds."""
    import s2s_core  # noqa: F401  (before MXNet: the thread setting)
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, nd

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import notebook_baseline as nb
    from s2s_core.bench import _time
    from s2s_core.config import load_config
    from s2s_core.search import decode_arrays
    from s2s_core.train import prepare, train_step

    config = load_config(SEED_TASK)
    session = prepare(config)  # seeds every generator from the config
    held_out = session.valid_pairs[:EVAL_QUESTIONS]
    size = config.training.batch_size
    indices = [np.arange(b * size, (b + 1) * size) for b in range(batches + 2)]

    # Both models see the same questions in the same order.
    baseline_arrays = nb.seed_arrays([session.train_pairs[i] for i in np.concatenate(indices)])
    baseline = nb.build(seed=config.training.seed)
    trainer = nb.make_trainer(baseline)
    b_src, b_in, b_target = nb.seed_arrays(held_out)

    def baseline_answer_loss() -> float:
        """Cross-entropy per answer character (the digits and the end marker)."""
        logits = baseline(nd.one_hot(nd.array(b_src), len(nb.VOCAB)), nd.one_hot(nd.array(b_in), len(nb.VOCAB)))
        log_probs = nd.pick(nd.log_softmax(logits, axis=-1), nd.array(b_target), axis=-1).asnumpy()
        answer = np.array([[t < len(a) + 1 for t in range(nb.LENGTH)] for _, a in held_out])
        return float(-(log_probs * answer).sum() / answer.sum())

    s_valid = session.valid_data
    s_rows = np.arange(len(held_out))

    def s2s_answer_loss() -> float:
        src, tgt_in, tgt_out = (nd.array(a[s_rows]) for a in (s_valid.src, s_valid.tgt_in, s_valid.tgt_out))
        total = session.loss(src, tgt_in, tgt_out).asscalar()
        return float(total / np.count_nonzero(s_valid.tgt_out[s_rows]))

    curve_at = sorted({0, batches // 2, batches})
    curves = {"notebook": {}, "s2s": {}}
    seconds = {"notebook": 0.0, "s2s": 0.0}
    done = 0
    for stop in curve_at:
        curves["notebook"][stop] = baseline_answer_loss()
        curves["s2s"][stop] = s2s_answer_loss()
        if stop == done:
            continue
        if done == 0:  # warm-up: graphs are built in the first batches, not timed
            nb.train_batches(baseline, trainer, baseline_arrays, size, 2, 0)
            for index in indices[:2]:
                train_step(session, index)
            mx.nd.waitall()
        count = stop - done
        seconds["notebook"] += _time(lambda: nb.train_batches(baseline, trainer, baseline_arrays, size,
                                                              count, 2 + done))
        seconds["s2s"] += _time(lambda: [train_step(session, i) for i in indices[2 + done:2 + stop]])
        done = stop
        curves["notebook"][stop] = baseline_answer_loss()
        curves["s2s"][stop] = s2s_answer_loss()

    # Decoding: the notebook one question at a time, s2s in batches of 10,000 questions.
    # Both stop where the model ends its answers (the notebook at "E" or a space, s2s when
    # every row of a batch has ended): the decoder steps each side ran are reported.
    questions = [q for q, _ in session.valid_pairs[:baseline_questions]]
    notebook_qps, answers = nb.time_predict_one(baseline, questions)
    notebook_steps = np.mean([min(len(answer) + 1, nb.LENGTH) for answer in answers])
    src = np.resize(session.valid_data.src, (DECODE_QUESTIONS, session.valid_data.src.shape[1]))
    decode_arrays(session.model, src[:1000])
    decoded = []
    seed_decode = _time(lambda: decoded.append(decode_arrays(session.model, src)[0]))
    seed_steps = decoder_steps(decoded[0])

    main = prepare(load_config(MAIN_TASK))
    main_src = np.resize(main.valid_data.src, (DECODE_QUESTIONS, main.valid_data.src.shape[1]))
    decode_arrays(main.model, main_src[:1000])
    main_decode = _time(lambda: decode_arrays(main.model, main_src))
    return {
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "batch_size": size, "batches": batches,
        "train_samples_per_s": {k: batches * size / v for k, v in seconds.items()},
        "answer_loss": {k: {str(b): v for b, v in c.items()} for k, c in curves.items()},
        "notebook_decode_qps": notebook_qps, "notebook_decode_questions": len(questions),
        "seed_decode_qps": DECODE_QUESTIONS / seed_decode,
        "notebook_decode_steps": notebook_steps, "seed_decode_steps": seed_steps,
        "main_decode_qps": DECODE_QUESTIONS / main_decode,
    }


def decoder_steps(ids) -> float:
    """Mean decoder steps per batch of greedy decoding: a batch runs until the last of its
    rows has produced the end token (or all steps)."""
    import numpy as np

    from s2s_core.search import DECODE_BATCH
    from s2s_core.vocab import EOS_ID

    ended = (ids == EOS_ID).any(axis=1)
    length = np.where(ended, (ids == EOS_ID).argmax(axis=1) + 1, ids.shape[1])
    return float(np.mean([length[i:i + DECODE_BATCH].max() for i in range(0, len(length), DECODE_BATCH)]))


def combinations(quick: bool) -> dict[str, dict]:
    """Every built-in encoder x decoder x attention, and the seed's decoder form."""
    encoders = {"lstm": {"type": "lstm"}, "gru": {"type": "gru"},
                "bi-lstm": {"type": "lstm", "bidirectional": True, "hidden": 64},
                "bi-gru": {"type": "gru", "bidirectional": True, "hidden": 64}}
    decoders = ["lstm", "gru"]
    attentions = ["none", "concat", "dot", "general", "additive"]
    if quick:
        encoders = {k: encoders[k] for k in ("lstm", "bi-gru")}
    out = {}
    for enc_name, encoder in encoders.items():
        for decoder in decoders:
            for attention in attentions:
                model = {"encoder": encoder, "decoder": {"type": decoder, "hidden": 128}}
                if attention != "none":
                    model["attention"] = {"type": attention}
                out[f"{enc_name} / {decoder} / {attention}"] = model
    out["lstm / lstm / concat, seed form"] = {
        "encoder": {"type": "lstm"},
        "decoder": {"type": "lstm", "hidden": 128, "attention_at": "input", "batch_norm": True},
        "attention": {"type": "concat", "context": "flatten"}}
    return out


def part_hybridize(quick: bool) -> dict:
    """Imperative vs hybridized training and decoding for every built-in combination."""
    import s2s_core  # noqa: F401
    from s2s_core.bench import Settings, compare, paired_speedup
    from s2s_core.config import parse_config, read_toml
    from s2s_core.hooks import Registry

    registry = Registry()
    base = read_toml(MAIN_TASK)
    base["task"]["questions"] = 6000  # the same work in both modes; data size is not timed
    settings = Settings(train_batches=HYBRID_BATCHES[quick], warmup_batches=3, rounds=HYBRID_ROUNDS,
                        decode_questions=HYBRID_QUESTIONS[quick])
    rows = {}
    for name, model in combinations(quick).items():
        data = dict(base, model=model)
        config = parse_config(data, f"{MAIN_TASK.name} [{name}]", registry)
        imperative, hybridized = compare(config, settings)
        rows[name] = {"train": paired_speedup(imperative.train_round_seconds, hybridized.train_round_seconds),
                      "decode": paired_speedup(imperative.decode_round_seconds, hybridized.decode_round_seconds)}
    return rows


def main_job() -> dict:
    """``s2s run tasks/addition.toml`` as a user runs it: time to 99% and peak memory."""
    started = time.perf_counter()
    reached = None
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen([sys.executable, "-m", "s2s_core", "run", str(MAIN_TASK), "--out", out],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
        best = 0.0
        for line in proc.stdout:
            match = re.match(r"epoch\s+(\d+)/\d+ .* exact-match ([\d.]+)%", line)
            if match:
                best = max(best, float(match.group(2)))
                if reached is None and best >= 99.0:
                    reached = (time.perf_counter() - started, int(match.group(1)))
        proc.wait()
        total = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest descendant
    return {"returncode": proc.returncode, "seconds_to_99": reached[0] if reached else None,
            "epoch_of_99": reached[1] if reached else None, "best": best, "total_seconds": total,
            "peak_rss_mib": peak_kib / 1024}


# -- the parent: run the parts, print the table -----------------------------------------

def run_part(args: list[str], threads: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"benchmark part {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(quick: bool) -> None:
    batches = 10 if quick else 30
    baseline_questions = 50 if quick else 200
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; "
          f"{'quick' if quick else 'full'} run", flush=True)
    job = main_job()  # first: its peak memory is read from this process's finished children
    seed_args = ["--part", "seed", "--batches", str(batches), "--baseline-questions", str(baseline_questions)]
    seed = run_part(seed_args, None)  # s2s's own thread setting, the baseline in the same process
    hybrid = run_part(["--part", "hybridize"] + (["--quick"] if quick else []), None)

    s2s_train = seed["train_samples_per_s"]["s2s"]
    notebook_train = seed["train_samples_per_s"]["notebook"]
    decode_ratio = seed["seed_decode_qps"] / seed["notebook_decode_qps"]
    print()
    print(f"OpenMP threads: {seed['threads']} (s2s's setting, and MXNet's default on this machine)")
    print()
    print("| figure | notebook baseline | s2s | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| seed architecture training, samples/s (batch {seed['batch_size']}, {batches} batches "
          f"after 2 warm-up) | {notebook_train:,.0f} | {s2s_train:,.0f} | {s2s_train / notebook_train:.2f}x | "
          f">= 2x: {verdict(s2s_train / notebook_train >= 2)} |")
    print(f"| seed architecture greedy decoding, questions/s (notebook: one at a time, "
          f"{seed['notebook_decode_questions']} questions, {seed['notebook_decode_steps']:.1f} decoder steps "
          f"each; s2s: {DECODE_QUESTIONS:,} in batches of 1,000, {seed['seed_decode_steps']:.1f} steps "
          f"each) | "
          f"{seed['notebook_decode_qps']:,.0f} | {seed['seed_decode_qps']:,.0f} | {decode_ratio:,.0f}x | "
          f">= 100x: {verdict(decode_ratio >= 100)} |")
    print(f"| default task's model greedy decoding, questions/s ({DECODE_QUESTIONS:,}) | | "
          f"{seed['main_decode_qps']:,.0f} | | >= 10,000: {verdict(seed['main_decode_qps'] >= 10_000)} |")
    t99 = job["seconds_to_99"]
    print(f"| `s2s run tasks/addition.toml`: wall time to 99% held-out exact match (preflight and "
          f"start-up included) | | {t99:.0f} s (epoch {job['epoch_of_99']}; best {job['best']:.2f}%, "
          f"all done in {job['total_seconds']:.0f} s) | | <= 120 s: {verdict(t99 is not None and t99 <= 120)} |"
          if t99 else f"| `s2s run tasks/addition.toml` | | never reached 99% (best {job['best']}%) | | **missed** |")
    print(f"| its peak resident memory (largest process) | | {job['peak_rss_mib']:,.0f} MiB | | "
          f"< 1 GiB: {verdict(job['peak_rss_mib'] < 1024)} |")
    print()
    print("Loss curve of the two trainings (cross-entropy per answer character on "
          f"{EVAL_QUESTIONS} held-out questions, after N timed batches):")
    print()
    print("| batches | " + " | ".join(seed["answer_loss"]["notebook"]) + " |")
    print("|---|" + "---|" * len(seed["answer_loss"]["notebook"]))
    for side in ("notebook", "s2s"):
        print(f"| {side} | " + " | ".join(f"{v:.3f}" for v in seed["answer_loss"][side].values()) + " |")
    print()
    slowest = min(min(r["train"], r["decode"]) for r in hybrid.values())
    print(f"Hybridized / imperative speed for every built-in combination (training {HYBRID_BATCHES[quick]} "
          f"batches, greedy decoding of {HYBRID_QUESTIONS[quick]:,} questions per mode, in {HYBRID_ROUNDS} "
          f"rounds alternating the modes; the median of the paired round ratios); never slower: "
          f"{verdict(slowest >= 1.0)} (lowest {slowest:.2f}x):")
    print()
    print("| encoder / decoder / attention | training | decoding |")
    print("|---|---|---|")
    for name, row in hybrid.items():
        print(f"| {name} | {row['train']:.2f}x | {row['decode']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and combinations")
    parser.add_argument("--part", choices=["seed", "hybridize"], help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-questions", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "seed":
        print(json.dumps(part_seed(args.batches, args.baseline_questions)))
    elif args.part == "hybridize":
        print(json.dumps(part_hybridize(args.quick)))
    else:
        report(args.quick)


if __name__ == "__main__":
    main()
