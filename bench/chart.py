"""Freshness against rate, and drain throughput, from docs/benchmarks/results.json.

Usage: python chart.py RESULTS_JSON OUT_PNG   (bench/run.sh runs it in a small venv with matplotlib)
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SYSTEMS = [
    ("ours", "ours (TypeScript processor)", "#1f77b4"),
    ("jdbc", "Debezium JDBC sink", "#ff7f0e"),
    ("jdbcTuned", "Debezium JDBC sink, tuned", "#d62728"),
    ("native", "PostgreSQL logical replication", "#2ca02c"),
]


def num(v):
    if v == "Infinity":
        return math.inf
    return float("nan") if v is None else float(v)


def main(src, out):
    with open(src) as f:
        r = json.load(f)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 6), gridspec_kw={"width_ratios": [2.2, 1]})

    runs = r["fixed"] + ([r["e2e"]] if r.get("e2e") else [])
    top = 1.0
    for run in runs:
        for key, _, _ in SYSTEMS:
            s = run["systems"].get(key)
            if s and not s.get("skipped"):
                for q in ("p50", "p99"):
                    v = num(s[q])
                    if math.isfinite(v):
                        top = max(top, v)
    ceiling = top * 3  # where "fell behind" points are drawn

    for key, label, color in SYSTEMS:
        for q, style, marker in (("p50", "-", "o"), ("p99", "--", "^")):
            xs, ys, bx_, by_ = [], [], [], []
            for run in runs:
                s = run["systems"].get(key)
                if not s or s.get("skipped"):
                    continue
                v = num(s[q])
                x = run["achievedRate"]
                if math.isfinite(v):
                    xs.append(x)
                    ys.append(max(v, 0.5))
                else:
                    bx_.append(x)
                    by_.append(ceiling)
            ax.plot(xs, ys, style, marker=marker, color=color, label=f"{label} {q}")
            if bx_:
                ax.plot(bx_, by_, "x", color=color, markersize=11, mew=2.5)
    ax.axhline(2000, color="grey", lw=0.8, ls=":")
    ax.text(0.01, 2000, " 2 s (p99 goal)", color="grey", va="bottom", fontsize=8,
            transform=ax.get_yaxis_transform())
    if any(not math.isfinite(num(run["systems"].get(k, {}).get("p99", 0))) for run in runs for k, _, _ in SYSTEMS
           if run["systems"].get(k) and not run["systems"][k].get("skipped")):
        ax.text(0.99, ceiling, "✕ fell behind (not all rows arrived) ", color="black", ha="right", va="center", fontsize=8,
                transform=ax.get_yaxis_transform())
    ax.set_yscale("log")
    ax.set_xscale("log")
    rates = sorted({run["achievedRate"] for run in runs})
    ax.set_xticks(rates)
    ax.set_xticklabels([f"{x:,.0f}" for x in rates])
    ax.minorticks_off()
    ax.set_xlabel("changes/s written to the source (achieved)")
    ax.set_ylabel("freshness: source commit → visible in target (ms, log)")
    ax.set_title("Freshness against rate" + (" (rightmost: the source's maximum, JDBC sink sitting out)" if r.get("e2e") else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)

    names, rates, colors = [], [], []
    for key, label, color in SYSTEMS:
        d = r["drain"]["systems"].get(key)
        if d:
            names.append({"ours": "ours", "jdbc": "JDBC sink", "jdbcTuned": "JDBC sink\ntuned", "native": "native\nreplication"}[key])
            rates.append(num(d["rate"]) if math.isfinite(num(d["rate"])) else 0)
            colors.append(color)
    bars = bx.bar(range(len(names)), rates, color=colors)
    for b, v in zip(bars, rates):
        bx.text(b.get_x() + b.get_width() / 2, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=9)
    bx.set_xticks(range(len(names)))
    bx.set_xticklabels(names, fontsize=7.5)
    bx.set_ylabel("changes/s")
    bx.set_title(f"Drain of {r['drain']['changes']:,} preloaded changes\n(each system alone, steady rate)", fontsize=10)
    bx.grid(True, axis="y", alpha=0.25)

    m = r["machine"]
    fig.suptitle(f"make bench, {r['date'][:16].replace('T', ' ')} UTC — {m['cores']} cores, load average "
                 f"{m['loadBefore'][0]:.2f} at start", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
