"""`scratchlab lora ...`: fine-tune LoRA adapters, evaluate, merge, list and generate.

scratchlab lora train --base qwen2.5-coder-0.5b --data demo --max-iters 100 --json
scratchlab lora train --base run-3 --data my_instructions.jsonl --r 8
scratchlab lora eval demo-lora-1 --json
scratchlab lora merge last
scratchlab lora list
scratchlab lora generate "What is Tomato? Answer in a few words." --adapter last --compare
"""

from __future__ import annotations

import typer

from scratchlab.cli import common, run_options
from scratchlab.cli import sweep as sweep_commands
from scratchlab.training import settings

app = typer.Typer(help="LoRA fine-tuning of our GPTs and a pretrained model.", no_args_is_help=True)

TRAIN_JSON_KEYS = ("adapter", "name", "status", "trainable_params", "total_params", "val_loss_before",
                   "val_loss_after", "val_ppl_before", "val_ppl_after", "bleu_before", "bleu_after",
                   "rougeL_before", "rougeL_after", "steps", "seconds", "job", "warnings")  # fmt: skip


def _ctx(yes: bool = True):
    return common.tool_context(auto_confirm=yes)


def _guard(fn):
    """Run `fn()`, turning user errors into `fail` (exit 2) with their message."""
    from scratchlab.tools.base import USER_ERRORS, ToolError

    try:
        return fn()
    except ToolError as e:
        common.fail(str(e))
    except USER_ERRORS as e:
        common.fail(f"{type(e).__name__}: {e}")


def train(
    base: str = typer.Option(
        "last",
        "--base",
        help="GPT run id/name, 'last', or a pretrained base (qwen2.5-coder-0.5b, smollm2-135m).",
    ),
    data: str = typer.Option(..., "--data", help=settings.help_of("finetune_lora", "data")),
    name: str = typer.Option(
        None, "--name", help="Adapter name (reuse an interrupted run's name to resume)."
    ),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return without waiting."),
    inline: bool = typer.Option(False, "--inline", help="Train in this process instead of a background job."),
    yes: bool = typer.Option(True, "--yes/--confirm", help="Skip the confirmation for long runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    **settings_kw,
) -> None:
    """Fine-tune a LoRA adapter and report val loss before/after."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from scratchlab.tools.lora import FinetuneLoraArgs, format_finetune, start_finetune

    ctx = _ctx(yes)
    given = run_options.overrides(settings_kw, "finetune_lora")
    tool_keys = set(FinetuneLoraArgs.model_fields)
    args = FinetuneLoraArgs(data=data, base=base, name=name, wait=not detach,
                            **{k: v for k, v in given.items() if k in tool_keys})  # fmt: skip
    extra = {k: v for k, v in given.items() if k not in tool_keys}
    max_iters = args.max_iters or settings.defaults("finetune_lora")["max_iters"]
    if as_json:
        res = _guard(lambda: start_finetune(ctx, args, inline=inline, extra=extra))
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeRemainingColumn(), console=common.err_console, transient=True) as bar:  # fmt: skip
            task = bar.add_task("lora", total=max_iters)
            ctx.on_progress = lambda job: bar.update(
                task, completed=job.step, description=(job.message or job.status)[:60]
            )
            res = _guard(lambda: start_finetune(ctx, args, inline=inline, extra=extra))
    if as_json:
        common.emit_json(
            {k: res.get(k) for k in TRAIN_JSON_KEYS if k in res} | {"samples": res.get("samples", [])[:3]}
        )
    else:
        common.console.print(common.safe(format_finetune(res), keep_newlines=True), highlight=False)
    common.exit_for(res.get("status"))


app.command()(run_options.with_params(train, run_options.settings_params("finetune_lora")))


@app.command("eval")
def eval_(
    adapter: str = typer.Argument("last", help="Adapter id, name or 'last'."),
    data: str = typer.Option(
        None, "--data", help="Evaluate on this JSONL's val split instead of the adapter's data."
    ),
    generate: int = typer.Option(8, "--generate", help="Val prompts to answer for BLEU/ROUGE."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Val loss/perplexity and BLEU/ROUGE of an adapter vs its base, with side-by-side samples."""
    from scratchlab.tools.lora import require_saved, resolve_adapter, resolve_data
    from scratchlab.training.lora_adapters import evaluate_adapter

    ctx = _ctx()

    def run():
        art = resolve_adapter(ctx, adapter)
        require_saved(art)
        path = resolve_data(ctx, data) if data else None
        return {
            "adapter": art.id,
            "name": art.name,
            **evaluate_adapter(art.path, data=path, n_generate=generate),
        }

    res = _guard(run)
    if as_json:
        common.emit_json(res)
        return
    common.console.print(common.safe(
        f"{res['name']} ({res['adapter']}): val loss {res['val_loss_before']:.3f} -> {res['val_loss_after']:.3f}, "
        f"ppl {res['val_ppl_before']:.2f} -> {res['val_ppl_after']:.2f}"
        + (f", BLEU {res['bleu_before']:.1f} -> {res['bleu_after']:.1f}, ROUGE-L {res['rougeL_before']:.1f} -> {res['rougeL_after']:.1f}"
           if "bleu_after" in res else "")), highlight=False)  # fmt: skip
    for s in res.get("samples", []):
        common.console.print(
            common.safe(f"\nQ: {s['prompt']}\n  ref:   {s['reference']}\n  base:  {s['base']}\n  tuned: {s['tuned']}",
                        keep_newlines=True), highlight=False,
        )  # fmt: skip


@app.command()
def merge(
    adapter: str = typer.Argument("last", help="Adapter id, name or 'last'."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Merge an adapter into its base (verified on a fixed batch) and register the standalone model."""
    from scratchlab.tools.lora import merge as do_merge

    info = _guard(lambda: do_merge(_ctx(), adapter))
    if as_json:
        common.emit_json(info)
    else:
        common.console.print(common.safe(f"merged {info['adapter']} -> {info['name']} ({info['artifact']}) at {info['path']}; "
                             f"max |logit diff| {info['max_abs_diff']:.2e}"), highlight=False)  # fmt: skip


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Adapters with their base and before/after val loss."""
    from scratchlab.tools.lora import ADAPTER, sync_adapter

    ctx = _ctx()
    rows = []
    for a in ctx.registry.list_artifacts(ADAPTER):
        a = sync_adapter(ctx, a)
        rows.append({"id": a.id, "name": a.name, "base": a.parent, "status": a.config.get("status"), "r": a.config.get("r"),
                     "val_loss_before": a.metrics.get("val_loss_before"), "val_loss_after": a.metrics.get("val_loss_after"),
                     "trainable_params": a.metrics.get("trainable_params"), "path": a.path})  # fmt: skip
    if as_json:
        common.emit_json(rows)
        return
    cells = ((r["id"], r["name"], r["base"], r["status"], r["r"],
              f"{r['val_loss_before']:.3f} -> {r['val_loss_after']:.3f}" if r["val_loss_after"] is not None else "-")
             for r in rows)  # fmt: skip
    common.console.print(
        common.safe_table("id", "name", "base", "status", "r", "val loss before -> after", rows=cells)
    )


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="The user message."),
    adapter: str = typer.Option("last", "--adapter", help="Adapter id, name or 'last'."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Maximum tokens to generate."),
    compare: bool = typer.Option(False, "--compare", help="Also answer with the base alone."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Answer a prompt with an adapter (greedy)."""
    from scratchlab.tools.lora import generate as do_generate

    out = _guard(lambda: do_generate(_ctx(), prompt, adapter, max_new_tokens, compare))
    if as_json:
        common.emit_json(out)
        return
    if compare:
        common.console.print(common.safe("base:  ", "bold") + common.safe(out["base"], keep_newlines=True))
    common.console.print(common.safe("tuned: ", "bold") + common.safe(out["tuned"], keep_newlines=True))


app.command("sweep")(sweep_commands.lora_sweep)  # scratchlab lora sweep "r=4,8,16" --data demo (cli/sweep.py)
