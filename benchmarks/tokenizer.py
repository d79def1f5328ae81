"""Benchmark the BPE tokenizer: training speed, encoding throughput, compression ratios.

    .venv/bin/python benchmarks/tokenizer.py                       # full run (several minutes)
    .venv/bin/python benchmarks/tokenizer.py --quick               # smaller vocabularies, 1 repeat
    .venv/bin/python benchmarks/tokenizer.py --minbpe /tmp/minbpe  # also time a karpathy/minbpe clone

On the deterministic shakespeare corpus (`scratchlab.datasets.load_text("shakespeare")`, ~5 MB):
- training seconds at vocab 512, 4096, 16384 for our trainer (gpt4 and gpt2 split patterns) and
  Hugging Face `tokenizers` BpeTrainer with the ByteLevel pre-tokenizer (Rust, its default threads);
- the recount-every-merge reference (minbpe's algorithm, `bpe_train.train_merges_reference` fed
  every chunk with count 1, or minbpe's own RegexTokenizer with --minbpe) on the first 1 MB at
  vocab 512, against our trainer on the same 1 MB;
- encoding throughput (MB/s, one thread): our encoder (cold cache), our tiktoken path, tiktoken
  cl100k_base, HF tokenizers (our 4096 exported); our encoder with cl100k ranks;
- compression ratios (UTF-8 bytes per token) of all of them on the corpus.

Results go to benchmarks/results/tokenizer.json and .md, with the machine's load average, because
the machine may be shared and timings move with load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratchlab.datasets import corpus_sha256, load_text  # noqa: E402
from scratchlab.models.bpe import PATTERNS, train_tokenizer  # noqa: E402
from scratchlab.models.bpe_train import train_merges_reference  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VOCABS = (512, 4096, 16384)
QUICK_VOCABS = (512, 4096)
REFERENCE_BYTES = 1_000_000
REFERENCE_VOCAB = 512


def timed(fn, repeats: int = 1):
    """(best seconds over `repeats`, last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def hf_train(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=0)  # fmt: skip
    lines = text.split("\n")
    batches = ["\n".join(lines[i : i + 1000]) for i in range(0, len(lines), 1000)]
    tok.train_from_iterator(batches, trainer=trainer)
    return tok


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="vocab 512 and 4096 only, fewer reference merges")
    ap.add_argument("--repeats", type=int, default=1, help="timing repeats (best is kept)")
    ap.add_argument("--minbpe", type=str, default=None, help="path to a clone of karpathy/minbpe (optional)")
    ap.add_argument("--reference-merges", type=int, default=None,
                    help="merges for the recount reference (default: all of vocab 512, i.e. 256)")  # fmt: skip
    ap.add_argument("--minbpe-merges", type=int, default=None,
                    help="merges for the minbpe clone (default: same as the reference); time is scaled to 256")  # fmt: skip
    ap.add_argument("--rewrite-md", action="store_true", help="only rebuild the .md from an existing .json")
    ap.add_argument("--out", type=str, default=str(RESULTS / "tokenizer"), help="results path without suffix")
    args = ap.parse_args()
    if args.rewrite_md:
        out = Path(args.out)
        write(json.loads(out.with_suffix(".json").read_text()), out)
        return

    text = load_text("shakespeare")
    nbytes = len(text.encode("utf-8"))
    res: dict = {
        "corpus": {"name": "shakespeare", "bytes": nbytes, "sha256": corpus_sha256("shakespeare")},
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        },  # fmt: skip
        "training": [],
    }
    vocabs = QUICK_VOCABS if args.quick else VOCABS
    trained = {}
    for v in vocabs:
        for pat in ("gpt4", "gpt2"):
            s, tok = timed(lambda v=v, pat=pat: train_tokenizer(text, v, pattern=pat), args.repeats)
            trained[(v, pat)] = tok
            res["training"].append(
                {"impl": f"scratchlab ({pat} split)", "vocab_size": v, "seconds": round(s, 3)}
            )
            print(f"train ours {pat} v{v}: {s:.2f}s", flush=True)
        s, hf = timed(lambda v=v: hf_train(text, v), args.repeats)
        trained[(v, "hf")] = hf
        res["training"].append(
            {"impl": "HF tokenizers BpeTrainer (ByteLevel)", "vocab_size": v, "seconds": round(s, 3)}
        )
        print(f"train hf v{v}: {s:.2f}s", flush=True)

    # ---- the recount-every-merge reference on 1 MB ----------------------------------------------
    import regex

    small = text[:REFERENCE_BYTES]
    n_ref = args.reference_merges or (32 if args.quick else REFERENCE_VOCAB - 256)
    ref: dict = {"bytes": len(small.encode("utf-8")), "vocab_size": REFERENCE_VOCAB, "merges_run": n_ref}
    s_ours, _ = timed(lambda: train_tokenizer(small, REFERENCE_VOCAB), args.repeats)
    ref["scratchlab_seconds"] = round(s_ours, 3)
    chunks = [(c.encode("utf-8"), 1) for c in regex.findall(PATTERNS["gpt4"], small)]
    t0 = time.perf_counter()
    train_merges_reference(chunks, n_ref)
    s_ref = time.perf_counter() - t0
    ref["reference_seconds_measured"] = round(s_ref, 3)
    ref["reference_seconds"] = round(s_ref * (REFERENCE_VOCAB - 256) / n_ref, 3)
    ref["reference_extrapolated"] = n_ref < REFERENCE_VOCAB - 256
    ref["speedup"] = round(ref["reference_seconds"] / s_ours, 1)
    print(f"reference 1MB: {ref['reference_seconds']:.1f}s vs ours {s_ours:.2f}s", flush=True)
    if args.minbpe:
        sys.path.insert(0, args.minbpe)
        from minbpe import RegexTokenizer

        n_mb = args.minbpe_merges or n_ref
        s_mb, _ = timed(lambda: RegexTokenizer().train(small, 256 + n_mb), 1)
        ref["minbpe_merges_run"] = n_mb
        ref["minbpe_seconds_measured"] = round(s_mb, 3)
        ref["minbpe_seconds"] = round(s_mb * (REFERENCE_VOCAB - 256) / n_mb, 3)
        ref["minbpe_speedup"] = round(ref["minbpe_seconds"] / s_ours, 1)
        print(f"minbpe 1MB: {ref['minbpe_seconds']:.1f}s", flush=True)
    res["reference"] = ref

    # ---- encoding throughput and compression ------------------------------------------------------
    from scratchlab.models.bpe_export import to_hf
    from scratchlab.models.tiktoken_compat import load_openai, openai_encoding

    tok = trained[(4096, "gpt4")]
    enc = []

    def run_ours(t):
        t._cache.clear()
        return t.encode_ordinary(text)

    s, ids = timed(lambda: run_ours(tok), args.repeats)
    enc.append(
        {
            "impl": "scratchlab encoder (ours 4096, cold cache)",
            "mb_per_s": round(mbps(nbytes, s), 3),
            "tokens": len(ids),
        }
    )
    tk = tok.to_tiktoken()
    s, ids2 = timed(lambda: tk.encode_ordinary(text), args.repeats)
    enc.append({"impl": "scratchlab tiktoken path (ours 4096)", "mb_per_s": round(mbps(nbytes, s), 3), "tokens": len(ids2),
                "identical_to_ours": ids2 == ids})  # fmt: skip
    hf = to_hf(tok)
    s, hf_ids = timed(lambda: hf.encode(text, add_special_tokens=False).ids, args.repeats)
    enc.append({"impl": "HF tokenizers, one encode call (ours 4096 exported)", "mb_per_s": round(mbps(nbytes, s), 3), "tokens": len(hf_ids),
                "identical_to_ours": hf_ids == ids})  # fmt: skip
    lines = text.split("\n")
    batches = ["\n".join(lines[i : i + 100]) + "\n" for i in range(0, len(lines), 100)]
    s, out = timed(lambda: hf.encode_batch(batches, add_special_tokens=False), args.repeats)
    enc.append({"impl": "HF tokenizers encode_batch, 100-line batches (ours 4096; rayon, all cores)",
                "mb_per_s": round(mbps(nbytes, s), 3), "tokens": sum(len(e.ids) for e in out)})  # fmt: skip
    cl = openai_encoding("cl100k_base")
    s, cl_ids = timed(lambda: cl.encode_ordinary(text), args.repeats)
    enc.append({"impl": "tiktoken cl100k_base", "mb_per_s": round(mbps(nbytes, s), 3), "tokens": len(cl_ids)})
    gpt4 = load_openai("cl100k_base")
    s, g_ids = timed(lambda: run_ours(gpt4), args.repeats)
    enc.append({"impl": "scratchlab encoder with cl100k ranks", "mb_per_s": round(mbps(nbytes, s), 3), "tokens": len(g_ids),
                "identical_to_tiktoken": g_ids == cl_ids})  # fmt: skip
    res["encoding"] = enc
    for e in enc:
        print(f"encode {e['impl']}: {e['mb_per_s']:.2f} MB/s", flush=True)

    comp = []
    for (v, pat), t in trained.items():
        if pat == "hf":
            n = len(t.encode(text, add_special_tokens=False).ids)
            comp.append(
                {"tokenizer": f"HF BpeTrainer ByteLevel {v}", "vocab_size": t.get_vocab_size(), "tokens": n}
            )
        else:
            n = len(t.to_tiktoken().encode_ordinary(text))
            comp.append({"tokenizer": f"scratchlab {pat} {v}", "vocab_size": t.vocab_size, "tokens": n})
    comp.append({"tokenizer": "cl100k_base", "vocab_size": cl.n_vocab, "tokens": len(cl_ids)})
    o2 = openai_encoding("o200k_base")
    comp.append(
        {"tokenizer": "o200k_base", "vocab_size": o2.n_vocab, "tokens": len(o2.encode_ordinary(text))}
    )
    for c in comp:
        c["compression_ratio"] = round(nbytes / c["tokens"], 3)
    res["compression"] = comp
    res["machine"]["loadavg_end"] = os.getloadavg()
    write(res, Path(args.out))


def write(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    lines = ["# Tokenizer benchmark", "",
             f"Corpus: shakespeare, {res['corpus']['bytes']:,} bytes (sha256 {res['corpus']['sha256'][:12]}...). "
             f"Python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_start'][0]:.2f} at start, "
             f"{m['loadavg_end'][0]:.2f} at end (shared machine: timings move with load).", "",
             "## Training (seconds)", "", "| implementation | vocab | seconds |", "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {t['impl']} | {t['vocab_size']} | {t['seconds']:.2f} |" for t in res["training"]]
    by = {(t["impl"], t["vocab_size"]): t["seconds"] for t in res["training"]}
    hf_key = "HF tokenizers BpeTrainer (ByteLevel)"
    if (hf_key, 4096) in by:
        ratios = {k[0]: v / by[(hf_key, 4096)] for k, v in by.items() if k[1] == 4096 and k[0] != hf_key}
        lines += ["", "Target at vocab 4096, within 3x of HF: "
                  + ", ".join(f"{k} {v:.2f}x HF's time" for k, v in ratios.items())]  # fmt: skip
    r = res["reference"]
    how = f"extrapolated from {r['merges_run']} merges" if r["reference_extrapolated"] else "measured"
    lines += ["", f"## Recount-every-merge reference, first {r['bytes']:,} bytes, vocab {r['vocab_size']}", "",
              f"- reference (minbpe's algorithm): {r['reference_seconds']:.1f} s ({how})",
              f"- scratchlab: {r['scratchlab_seconds']:.2f} s -> **{r['speedup']}x** faster"]  # fmt: skip
    if "minbpe_seconds" in r:
        n_mb = r.get("minbpe_merges_run", r["merges_run"])
        how_mb = "measured" if n_mb >= r["vocab_size"] - 256 else f"extrapolated linearly from {n_mb} merges"
        lines.append(f"- karpathy/minbpe RegexTokenizer (a clone passed with --minbpe): "
                     f"{r['minbpe_seconds']:.1f} s ({how_mb}) -> {r['minbpe_speedup']}x")  # fmt: skip
    lines += [
        "",
        "## Encoding (one thread, whole corpus)",
        "",
        "| encoder | MB/s | tokens | note |",
        "|---|---:|---:|---|",
    ]
    for e in res["encoding"]:
        note = ", ".join(f"{k}={v}" for k, v in e.items() if k.startswith("identical"))
        lines.append(f"| {e['impl']} | {e['mb_per_s']:.2f} | {e['tokens']:,} | {note} |")
    lines += ["", "## Compression (UTF-8 bytes per token on the corpus)", "",
              "| tokenizer | vocab | tokens | bytes/token |", "|---|---:|---:|---:|"]  # fmt: skip
    lines += [
        f"| {c['tokenizer']} | {c['vocab_size']:,} | {c['tokens']:,} | {c['compression_ratio']:.3f} |"
        for c in res["compression"]
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
