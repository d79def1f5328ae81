"""`scratchlab rag ...`: index documents, search them, answer with citations, evaluate.

    scratchlab rag index --name seeds ../shared/seeds --include '*.txt'
    scratchlab rag search --name seeds "what does QLoRA quantize?" --k 5 --mode hybrid --json
    scratchlab rag ask --name seeds "what does QLoRA quantize?"
    scratchlab rag eval --name wiki --queries benchmarks/data/wiki_queries_dev.jsonl
    scratchlab rag list
    scratchlab rag remove seeds --yes

Heavy imports (torch, faiss, sentence-transformers) happen inside the commands.
"""

from __future__ import annotations

import typer

from scratchlab.cli import common

app = typer.Typer(help="Index documents, search them, answer with citations, evaluate.", no_args_is_help=True)

NAME_HELP = "Index name or id ('last' for the most recent)."


def _ctx():
    return common.tool_context(auto_confirm=True)


def _open(ctx, name: str):
    from scratchlab.tools.base import ToolError
    from scratchlab.tools.rag import resolve_index

    try:
        return resolve_index(ctx, name)
    except ToolError as e:
        common.fail(str(e))


def _progress_renderer(enabled: bool):
    """A rich progress display and a callback for `IngestProgress` events."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not enabled:
        return contextlib.nullcontext(), None
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=common.err_console, transient=False,
    )  # fmt: skip
    tasks: dict[str, int] = {}

    def on_progress(ev) -> None:
        if ev.stage == "load":
            if "files" not in tasks:
                tasks["files"] = progress.add_task("files ", total=ev.files_total, rate="")
            progress.update(tasks["files"], completed=ev.files_done, total=ev.files_total)
        elif ev.stage in ("embed", "save"):
            if "chunks" not in tasks:
                tasks["chunks"] = progress.add_task("chunks", total=max(ev.chunks_total, 1), rate="")
            fields = {"rate": f"{ev.chunks_per_s:.1f} emb/s"} if ev.chunks_per_s else {}
            progress.update(
                tasks["chunks"], completed=ev.chunks_done, total=max(ev.chunks_total, 1), **fields
            )

    return progress, on_progress


@app.command("index")
def index_cmd(
    paths: list[str] = typer.Argument(..., help="Files and/or folders to index (folders recursively)."),
    name: str = typer.Option(
        None,
        "--name",
        "-n",
        help="Index name (default: the first path's name). Re-using a name refreshes that index from the same paths; other paths need a new name.",
    ),
    include: list[str] = typer.Option(
        None, "--include", help="Only files matching this glob (repeatable), e.g. '*.md'."
    ),
    exclude: list[str] = typer.Option(None, "--exclude", help="Skip files matching this glob (repeatable)."),
    chunk_size: int = typer.Option(
        None, "--chunk-size", help="Tokens per chunk for a NEW index (default 256)."
    ),
    chunk_overlap: int = typer.Option(
        None, "--chunk-overlap", help="Overlap tokens for a NEW index (default 32)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index files and folders (only new or changed files are embedded; deleted files are removed)."""
    from scratchlab.retrieval.chunking import ChunkConfig
    from scratchlab.tools.rag import run_index

    try:
        chunking = ChunkConfig(
            **{
                k: v
                for k, v in {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}.items()
                if v is not None
            }
        )
        progress, on_progress = _progress_renderer(not as_json)
        with progress:
            art, rep = run_index(
                _ctx(), paths, name, include, exclude, on_progress=on_progress, chunking=chunking
            )
    except (ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    if as_json:
        common.emit_json({"id": art.id, "name": art.name, "path": art.path, **rep.to_json()})
        return
    common.console.print(
        common.safe(art.name, "bold") + common.safe(f" ({art.id}): {rep.n_docs} docs, {rep.n_chunks} chunks ({rep.dense_kind}) | "
        f"this run: {rep.added} new, {rep.changed} changed, {rep.removed} removed, {rep.unchanged} unchanged, "
        f"{rep.new_chunks} chunks embedded in {rep.seconds:.1f}s"), highlight=False,
    )  # fmt: skip
    for path, why in rep.failed[:10]:
        common.err_console.print(
            common.safe("skipped ", "yellow") + common.safe(f"{path}: {why}"), highlight=False
        )


def _search(
    idx, query: str, k: int, mode: str, rrf_k: float | None, rerank: str | None, hyde: bool, model_spec,
    bm25_weight: float | None = None,
):  # fmt: skip
    kw = {"bm25_weight": bm25_weight}
    if rerank:
        from scratchlab.retrieval.rerank import get_reranker

        kw["reranker"] = get_reranker(rerank, idx.embedder)
    if hyde:
        from scratchlab.retrieval.hyde import hyde_vector

        kw["query_vector"] = hyde_vector(query, _generate(model_spec), idx.embedder)
    return idx.search(query, k=k, mode=mode, rrf_k=rrf_k, **kw)


def _generate(model_spec):
    from scratchlab.agent.llm import get_chat_model

    model = get_chat_model(model_spec, workspace=common.workspace())

    def generate(prompt: str) -> str:
        out = model.invoke(prompt)
        return out.content if isinstance(out.content, str) else str(out.content)

    return generate


@app.command("search")
def search_cmd(
    typer_ctx: typer.Context,
    query: str = typer.Argument(..., help="The question or keywords."),
    name: str = typer.Option("last", "--name", "-n", help=NAME_HELP),
    k: int = typer.Option(10, "--k", "-k", help="Number of results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | dense | bm25."),
    rrf_k: float = typer.Option(
        None, "--rrf-k", help="RRF constant for hybrid (default: the index's, 20 for new indexes)."
    ),
    bm25_weight: float = typer.Option(
        None,
        "--bm25-weight",
        help="BM25 weight in hybrid RRF, dense = 1 (default: the index's, 3 for new indexes).",
    ),
    rerank: str = typer.Option(
        None,
        "--rerank",
        help="Rerank the top 20: 'maxsim' (late interaction, no model) or a CrossEncoder folder.",
    ),
    hyde: bool = typer.Option(
        False, "--hyde", help="Embed a hypothetical answer written by the chat model (HyDE)."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print [{"source","span","score","text"}, ...].'),
) -> None:
    """Search an index."""
    ctx = _ctx()
    idx, art = _open(ctx, name)
    spec = (typer_ctx.obj or {}).get("model")
    try:
        hits = _search(idx, query, k, mode, rrf_k, rerank, hyde, spec, bm25_weight)
    except (ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    if as_json:
        common.emit_json([h.to_json() for h in hits])
        return
    if not hits:
        common.console.print(common.safe(f"no results in {art.name} ({art.id})"))
    for h in hits:
        flag = "" if idx.is_relevant(h) else "  (low relevance)"
        common.console.print(common.safe(f"[{h.rank}]", "bold") + common.safe(f" {h.doc_id}:{h.line}  ")
                             + common.safe(f"span {h.start}-{h.end}  score {h.score:.4f}{flag}", "dim"), highlight=False)  # fmt: skip
        text = " ".join(h.text.split())
        common.console.print(
            "    " + (text if len(text) <= 400 else text[:400] + " ..."), highlight=False, markup=False
        )


@app.command("ask")
def ask_cmd(
    typer_ctx: typer.Context,
    question: str = typer.Argument(..., help="The question."),
    name: str = typer.Option("last", "--name", "-n", help=NAME_HELP),
    k: int = typer.Option(5, "--k", "-k", help="Passages given to the model."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | dense | bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print {answer, sources} as JSON."),
) -> None:
    """Answer a question from an index with numbered citations (uses the chat model, see --model)."""
    from scratchlab.retrieval.answer import answer, cite

    ctx = _ctx()
    idx, _art = _open(ctx, name)
    spec = (typer_ctx.obj or {}).get("model")
    try:
        result = answer(question, idx, _lazy_generate(spec), k=k, mode=mode)
    except (ValueError, LookupError, OSError, ImportError) as e:
        common.fail(str(e))
    sources = [{"n": n, "cite": cite(h), **h.to_json()} for n, h in enumerate(result.sources, 1)]
    if as_json:
        common.emit_json({"answer": result.text, "grounded": result.grounded, "sources": sources})
        return
    common.console.print(result.text, highlight=False, markup=False)
    if sources:
        common.console.print("\n[bold]Sources[/]")
        for s in sources:
            common.console.print(f"[{s['n']}] {s['cite']}", highlight=False, markup=False)


def _lazy_generate(spec):
    """A generate() that only loads the chat model when first called (not for 'nothing found')."""
    holder = {}

    def generate(prompt: str) -> str:
        if "fn" not in holder:
            holder["fn"] = _generate(spec)
        return holder["fn"](prompt)

    return generate


@app.command("eval")
def eval_cmd(
    queries: str = typer.Option(
        ...,
        "--queries",
        "-q",
        help="JSONL: {'query', 'relevant': [doc ids]} or {'query', 'evidence': [strings]}.",
    ),
    name: str = typer.Option("last", "--name", "-n", help=NAME_HELP),
    modes: str = typer.Option("bm25,dense,hybrid", "--modes", help="Comma-separated modes to compare."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N queries."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Recall@k, MRR@10 and nDCG@10 per search mode."""
    from scratchlab.retrieval.eval import evaluate, format_table, load_queries

    ctx = _ctx()
    idx, art = _open(ctx, name)
    try:
        qs = load_queries(queries)[:limit]
        results = evaluate(idx, qs, modes=[m.strip() for m in modes.split(",") if m.strip()])
    except (ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    summary = {m: {**r.metrics, **r.latency} for m, r in results.items()}
    ctx.registry.update_artifact(art.id, metrics={"eval": {"queries": queries, "n": len(qs), **summary}})
    if as_json:
        common.emit_json({"index": art.id, "queries": len(qs), "results": summary})
        return
    common.console.print(
        f"{art.name} ({art.id}), {len(qs)} queries\n" + format_table(results), highlight=False, markup=False
    )


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List indexes."""
    arts = common.registry().list_artifacts("index")
    if as_json:
        common.emit_json([{"id": a.id, "name": a.name, "path": a.path, **a.metrics} for a in arts])
        return
    if not arts:
        common.console.print("no indexes yet: scratchlab rag index --name NAME PATH")
    for a in arts:
        m = a.metrics
        common.console.print(
            common.safe(
                f"{a.id:10} {a.name:24} {m.get('docs', '?')} docs, {m.get('chunks', '?')} chunks  {a.path}"
            ),
            highlight=False,
        )


@app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="Index name or id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an index (its folder and its registry entry)."""
    from scratchlab.retrieval.index import IndexBusy, IndexNotFound, remove_index

    reg = common.registry()
    try:
        art = reg.get_artifact(name, kind="index")
    except LookupError as e:
        common.fail(str(e))
    if not yes and not typer.confirm(f"delete index {art.name} ({art.id}) at {art.path}?"):
        raise typer.Exit(1)
    try:
        remove_index(art.path)
    except IndexNotFound:
        pass  # files already gone: still drop the registry row
    except IndexBusy as e:
        common.fail(str(e))
    reg.remove_artifact(art.id, kind="index")
    common.console.print(common.safe(f"removed {art.name} ({art.id})"), highlight=False)
