"""`scratchlab tokenizer ...`: train, encode, decode, inspect, compare and list BPE tokenizers.

    scratchlab tokenizer train --input shakespeare --vocab-size 4096 --name bpe4k [--special '<|endoftext|>'] [--json]
    scratchlab tokenizer encode --name bpe4k "To be, or not to be" [--json]
    scratchlab tokenizer decode --name bpe4k 1026 309 44
    scratchlab tokenizer inspect --name bpe4k --merges 30
    scratchlab tokenizer compare --name bpe4k --input notes.txt [--json]
    scratchlab tokenizer list

`--name` also accepts an artifact id ("tokenizer-3"), "last", and the built-in "cl100k_base"/"o200k_base".
"""

from __future__ import annotations

import time

import typer

from scratchlab.cli.common import console, emit_json, fail, registry, safe, safe_table, workspace

app = typer.Typer(help="tokenizer commands", no_args_is_help=True)

MAX_PRINT_IDS = 200


def _load(name: str):
    """(Tokenizer, label, artifact or None), or exit with a readable error."""
    from scratchlab.models.bpe import TokenizerError
    from scratchlab.tools.base import ToolContext, ToolError
    from scratchlab.tools.tokenizer import resolve_tokenizer

    ctx = ToolContext(workspace=workspace(), registry=registry())
    try:
        return resolve_tokenizer(ctx, name)
    except (ToolError, TokenizerError, OSError) as e:
        fail(str(e))


def _read_inputs(inputs: list[str]) -> tuple[str, str]:
    from scratchlab.datasets import DatasetError, load_text

    try:
        texts = [load_text(src) for src in inputs]
    except DatasetError as e:
        fail(str(e))
    return "\n\n".join(texts), ",".join(inputs)


@app.command()
def train(
    inputs: list[str] = typer.Option(
        ["shakespeare"], "--input", "-i", help="Dataset name or text file/folder; repeat for several."
    ),
    vocab_size: int = typer.Option(
        512, "--vocab-size", "-v", help="Total ids: 256 bytes + merges + special tokens."
    ),
    name: str = typer.Option(
        None, "--name", "-n", help="New tokenizer name (default: the first free bpe<vocab>-<input stem>[-N])."
    ),
    pattern: str = typer.Option(
        "gpt4", "--pattern", "-p", help="Split preset gpt4|gpt2|none, or a custom regex."
    ),
    special: list[str] = typer.Option(
        None, "--special", "-s", help="Special token, e.g. '<|endoftext|>'; repeat for several."
    ),
    hf: bool = typer.Option(
        False, "--hf", help="Also write a Hugging Face tokenizers JSON (tokenizer.json)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a byte-level BPE tokenizer and register it in the lab."""
    from scratchlab.lab.diskspace import OutOfSpace
    from scratchlab.lab.registry import NameTaken
    from scratchlab.models.bpe import TokenizerError, train_tokenizer
    from scratchlab.tools.tokenizer import save_new_tokenizer, tokenizer_name

    try:
        name = tokenizer_name(registry(), workspace(), name, vocab_size, inputs[0])
    except NameTaken as e:
        fail(str(e))
    text, source = _read_inputs(inputs)
    specials = list(special or [])
    t0 = time.perf_counter()
    try:
        if as_json:
            tok = train_tokenizer(text, vocab_size, pattern=pattern, special_tokens=specials, name=name)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            cols = (TextColumn("[bold]training[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:>8.0f} merges/s"), TimeElapsedColumn())  # fmt: skip
            with Progress(*cols, console=console, transient=False) as bar:
                task = bar.add_task(name, total=max(vocab_size - 256 - len(specials), 0), rate=0.0)
                first: list[float] = []  # (time, merges) at the first report: pre-tokenization is done

                def progress(done: int, total: int) -> None:
                    now = time.perf_counter()
                    if not first:
                        first.extend((now, done))
                    rate = (done - first[1]) / (now - first[0]) if now > first[0] else 0.0
                    bar.update(task, completed=done, total=total, rate=rate)

                tok = train_tokenizer(text, vocab_size, pattern=pattern, special_tokens=specials,
                                      progress=progress, name=name)  # fmt: skip
    except TokenizerError as e:
        fail(str(e))
    seconds = time.perf_counter() - t0
    try:
        art, path = save_new_tokenizer(registry(), workspace(), tok, name, source, vocab_size, seconds, hf=hf)
    except (NameTaken, OutOfSpace) as e:
        fail(str(e))
    ratio = tok.training_stats["compression_ratio"]
    result = {"id": art.id, "name": name, "vocab_size": tok.vocab_size, "num_merges": tok.num_merges,
              "seconds": round(seconds, 3), "compression_ratio": round(ratio, 4), "path": str(path),
              "pattern": tok.pattern_name, "special_tokens": tok.special_tokens}  # fmt: skip
    if as_json:
        emit_json(result)
    else:
        console.print(safe(art.id, "green") + safe(f" {name}: vocab {tok.vocab_size}, {tok.num_merges} merges, "
                                                  f"{ratio:.2f} bytes/token, {seconds:.2f}s -> {path}"))  # fmt: skip


@app.command()
def encode(
    text: str = typer.Argument(..., help="Text to encode."),
    name: str = typer.Option(
        "last", "--name", "-n", help="Tokenizer name, id, 'last', or cl100k_base/o200k_base."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print ids and token strings as JSON."),
) -> None:
    """Encode text (special tokens allowed) and show the token boundaries."""
    from scratchlab.models.bpe import TokenizerError

    tok, label, _ = _load(name)
    try:
        ids = tok.encode(text, allowed_special="all")
    except TokenizerError as e:
        fail(str(e))
    if as_json:
        emit_json(
            {"tokenizer": label, "ids": ids, "tokens": [tok.token_str(i) for i in ids], "count": len(ids)}
        )
        return
    console.print(tok.colorize(text))
    shown = " ".join(map(str, ids[:MAX_PRINT_IDS])) + (" ..." if len(ids) > MAX_PRINT_IDS else "")
    console.print(f"{len(ids)} tokens ({label}): {shown}", markup=False, highlight=False)


@app.command()
def decode(
    ids: list[int] = typer.Argument(..., help="Token ids."),
    name: str = typer.Option(
        "last", "--name", "-n", help="Tokenizer name, id, 'last', or cl100k_base/o200k_base."
    ),
) -> None:
    """Decode token ids back to text."""
    from scratchlab.models.bpe import TokenizerError

    tok, _, _ = _load(name)
    try:
        typer.echo(tok.decode(ids))
    except TokenizerError as e:
        fail(str(e))


@app.command()
def inspect(
    name: str = typer.Option(
        "last", "--name", "-n", help="Tokenizer name, id, 'last', or cl100k_base/o200k_base."
    ),
    merges: int = typer.Option(20, "--merges", "-m", help="How many of the first merges to show."),
    token: int = typer.Option(None, "--token", "-t", help="Explain how this token id was built."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show a tokenizer's settings, its first merges, and how a token was built."""
    from rich.table import Table
    from rich.text import Text

    from scratchlab.models.bpe import TokenizerError

    tok, label, art = _load(name)
    first = tok.first_merges(merges)
    info = {"tokenizer": label, "vocab_size": tok.vocab_size, "num_merges": tok.num_merges,
            "pattern": tok.pattern_name, "special_tokens": tok.special_tokens,
            "path": art.path if art else None,
            "first_merges": [{"id": i, "pair": [a, b], "token": s} for i, a, b, s in first]}  # fmt: skip
    if token is not None:
        try:
            info["token"] = {"id": token, "text": tok.token_str(token), "tree": _tree(tok, token)}
        except TokenizerError as e:
            fail(str(e))
    if as_json:
        emit_json(info)
        return
    console.print(f"{label}: vocab {tok.vocab_size}, {tok.num_merges} merges, pattern {tok.pattern_name}, "
                  f"special {tok.special_tokens or '{}'}", markup=False, highlight=False)  # fmt: skip
    table = Table("id", "merge", "token", title=f"first {len(first)} merges")
    for i, a, b, s in first:
        table.add_row(
            str(i), Text(f"[{tok.token_str(a)}] + [{tok.token_str(b)}]  ({a}, {b})"), Text(f"[{s}]")
        )
    console.print(table)
    if token is not None:
        console.print(
            f"token {token} [{info['token']['text']}] = {info['token']['tree']}",
            markup=False,
            highlight=False,
        )


def _tree(tok, token_id: int, depth: int = 0) -> str:
    pair = tok.merge_of(token_id)
    if pair is None or depth > 6:
        return f"[{tok.token_str(token_id)}]"
    return f"({_tree(tok, pair[0], depth + 1)} + {_tree(tok, pair[1], depth + 1)})"


@app.command()
def compare(
    name: str = typer.Option("last", "--name", "-n", help="Our tokenizer (name, id or 'last')."),
    inputs: list[str] = typer.Option(
        ["shakespeare"], "--input", "-i", help="Dataset name or text file/folder to measure on."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare with GPT-4 (cl100k_base), GPT-4o (o200k_base) and GPT-2: tokens, bytes/token, splits."""
    from rich.table import Table

    from scratchlab.models.bpe_compare import compare as run_compare
    from scratchlab.models.bpe_compare import reference_tokenizers

    tok, label, _ = _load(name)
    text, source = _read_inputs(inputs)
    refs = {k: v for k, v in reference_tokenizers().items() if k != label}
    report = run_compare({label: tok, **refs}, text)
    if as_json:
        emit_json({"input": source, **report})
        return
    table = Table("tokenizer", "vocab", "tokens", "bytes/token", title=f"{source}: {report['bytes']:,} bytes")
    for r in report["rows"]:
        if r["available"]:
            table.add_row(
                r["name"], f"{r['vocab_size']:,}", f"{r['tokens']:,}", f"{r['compression_ratio']:.3f}"
            )
        else:
            table.add_row(r["name"], "-", "-", r["note"])
    console.print(table)
    sample = report["sample"]
    console.print(f"sample: {sample['text']!r}", markup=False, highlight=False)
    for who, toks in sample["splits"].items():
        console.print(f"  {who} ({len(toks)}): " + "|".join(toks), markup=False, highlight=False)


@app.command("list")
def list_() -> None:
    """List the lab's tokenizers, newest first."""
    arts = registry().list_artifacts(kind="tokenizer")
    if not arts:
        console.print("no tokenizers yet: scratchlab tokenizer train --input shakespeare --vocab-size 512")
        return
    rows = ((a.id, a.name, a.config.get("vocab_size", ""), a.config.get("pattern", ""), a.config.get("dataset", ""),
             a.metrics.get("compression_ratio", ""), a.metrics.get("seconds", "")) for a in arts)  # fmt: skip
    console.print(
        safe_table("id", "name", "vocab", "pattern", "dataset", "bytes/token", "seconds", rows=rows)
    )
