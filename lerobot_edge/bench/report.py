"""Bench report renderings: a terminal table, Markdown, and a PNG (p50 bars, p99 whiskers per stage)."""

from __future__ import annotations

from pathlib import Path


def _stage_names(report: dict) -> list[str]:
    """preprocess, the graphs (a preprocess_in_graph variant's frames graphs too), sampler, postprocess."""
    fixed = {"preprocess", "sampler", "postprocess", "total"}
    graphs = list(report["graphs"])
    for r in report["results"]:
        graphs += [s for s in r.get("stages") or {} if s not in fixed and s not in graphs]
    return ["preprocess", *graphs, "sampler", "postprocess"]


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3f}"


def rows(report: dict) -> list[list[str]]:
    """One row per backend/precision: per-stage p50, end-to-end percentiles, rates, speed-up, roofline."""
    out = []
    for r in report["results"]:
        if r.get("skipped"):
            out.append([r["name"], f"skipped: {r['skipped']}"[:90]])
            continue
        st, tot = r["stages"], r["stages"]["total"]
        stages = [f"{st[s]['p50_ms']:.2f}" if s in st else "-" for s in _stage_names(report)]
        roof = f"{r['achieved_gflops']:.0f} ({r['roofline_fraction']:.0%})" if "achieved_gflops" in r else "-"
        out.append([r["name"], *stages, f"{tot['p50_ms']:.2f}", f"{tot['p90_ms']:.2f}", f"{tot['p99_ms']:.2f}",
                    f"{tot['max_ms']:.2f}", _mb(r.get("bytes_to_engine_per_chunk")),
                    f"{r['select_action']['p50_ms']:.2f}", _share(r), f"{r['cold_start_s']:.2f}",
                    *[f"x{r[k]:.2f}" if k in r else "-" for k in _speedups(report)], roof,
                    f"{r['control']['sync_hz']:.0f} / {r['control']['async_hz']:.0f}"])
    return out


def _share(r: dict) -> str:
    """Host stages (preprocess + sampler + postprocess) as a percentage of the engine calls' time, per chunk."""
    return "-" if r.get("host_share") is None else f"{100 * r['host_share']:.2f}"


def _speedups(report: dict) -> list[str]:
    """The speed-up columns present: vs our modules in eager torch, and vs LeRobot's policy when benched."""
    return [k for k in ("speedup_vs_torch", "speedup_vs_lerobot")
            if any(k in r for r in report["results"])] or ["speedup_vs_torch"]


def header(report: dict) -> list[str]:
    return ["backend", *[f"{s} p50" for s in _stage_names(report)], "chunk p50", "p90", "p99", "max",
            "MB to engine/chunk", "select_action", "host % of engine", "cold s", *[k.replace("speedup_vs_", "vs ").replace("lerobot", "LeRobot")
                                         for k in _speedups(report)], "GFLOP/s (% fp32 GEMM)", "max Hz sync/async"]


def text_table(report: dict) -> str:
    head, body = header(report), rows(report)
    full = [r for r in body if len(r) == len(head)]  # skipped rows span the table
    widths = [max([len(h), *(len(r[i]) for r in full)]) for i, h in enumerate(head)]
    def line(cells):
        if len(cells) == 2 and cells[1].startswith("skipped"):
            return f"{cells[0]:<{widths[0]}}  {cells[1]}"
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    m = report["machine"]
    title = (f"{report['policy']} — {report['source']}  (ms; {report['config']['iterations']} interleaved rounds)\n"
             f"{m['cpu']} · {m['cores']} cores · GEMM peak {m['gemm_peak_gflops']} GFLOP/s"
             + (f" · GPU {m['gpu']}" if m.get("gpu") else "") + f" · peak RSS {report['peak_rss_mb']} MB")
    return "\n".join([title, line(head), line(["-" * w for w in widths]), *map(line, body)])


def markdown(report: dict) -> str:
    head = header(report)
    lines = [f"### {report['policy']}: {report['source']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows(report):
        lines.append("| " + " | ".join(r + [""] * (len(head) - len(r))) + " |")
    m = report["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, flags {', '.join(m['cpu_flags'])}, GEMM peak "
              f"{m['gemm_peak_gflops']} GFLOP/s; versions {m['versions']}. Latencies in ms; "
              f"{report['config']['iterations']} interleaved rounds after {report['config']['warmup']} warm-up; "
              "`preprocess` is the host's share; MB to engine/chunk: host arrays handed to the engines per chunk "
              "(a `/in_graph` variant feeds uint8 camera frames)."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str | Path) -> Path:
    """Stacked p50 per stage for each backend, with the end-to-end p99 as a whisker."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("--plot needs matplotlib: pip install matplotlib") from e
    live = [r for r in report["results"] if not r.get("skipped")]
    names = [r["name"] for r in live]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(live), 4.5))
    bottom = [0.0] * len(live)
    for stage in _stage_names(report):
        vals = [r["stages"].get(stage, {}).get("p50_ms", 0.0) for r in live]
        ax.bar(names, vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    # variants timed end to end only (LeRobot's own policy): one grey bar for the whole call
    whole = [r["stages"]["total"]["p50_ms"] if set(r["stages"]) == {"total"} else 0.0 for r in live]
    if any(whole):
        ax.bar(names, whole, bottom=bottom, color="0.6", label="end to end (no stage breakdown)")
    p50 = [r["stages"]["total"]["p50_ms"] for r in live]
    p99 = [r["stages"]["total"]["p99_ms"] for r in live]
    ax.errorbar(names, p50, yerr=[[0] * len(live), [b - a for a, b in zip(p50, p99)]], fmt="none", ecolor="black",
                capsize=6, label="end-to-end p50→p99")
    ax.set_ylabel("predict_action_chunk latency (ms)")
    ax.set_title(f"{report['policy']} on {report['machine']['cpu'][:48]}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
