"""What a `make bench` run says: the targets of issue #11 as ratios, the table of
docs/performance.md and the charts (throughput by concurrency, latency, time to first token,
memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from scripts.processes import ROOT

NAMES = {
    "bare": "bare Starlette endpoint",
    "langserve_chain": "LangServe chain (prompt, model, parser)",
    "tutorial": "tutorial-style FastAPI app (Redis limit, Redis history, chain)",
    "naive_graph": "LangServe + naive 4-node graph, stock AsyncRedisSaver",
    "naive_graph_stateless": "the same graph, no checkpointer (no state)",
    "graphgate": "**graphgate** (full pipeline)",
}


def top(server: dict[str, Any]) -> dict[str, Any]:
    """The invoke figures at the highest concurrency measured."""
    invoke: dict[str, dict[str, Any]] = server["invoke"]
    return invoke[max(invoke, key=int)]


def single(server: dict[str, Any]) -> dict[str, Any]:
    invoke: dict[str, dict[str, Any]] = server["invoke"]
    return invoke[min(invoke, key=int)]


def paced(server: dict[str, Any]) -> dict[str, Any]:
    """The paced streams' capacity (T3)."""
    streams: dict[str, Any] = server["paced"]["streams"]
    return streams


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def target(value: float | None, bound: float, at_least: bool) -> dict[str, Any]:
    met = None if value is None else (value >= bound if at_least else value <= bound)
    return {"value": value, "bound": bound, "at_least": at_least, "met": met}


def targets(servers: dict[str, Any]) -> dict[str, Any]:
    """Each target of #11 that this run measures, as a ratio against its anchor."""
    gg, chain = servers["graphgate"], servers["langserve_chain"]
    rps = {name: top(s)["requests_per_second"] for name, s in servers.items()}
    return {
        "T1 invoke vs naive graph (must)": target(
            ratio(rps["graphgate"], rps["naive_graph"]), 3.0, True
        ),
        "T1 invoke vs LangServe chain (stretch)": target(
            ratio(rps["graphgate"], rps["langserve_chain"]), 0.5, True
        ),
        "T1 invoke vs tutorial app (aim)": target(
            ratio(rps["graphgate"], rps["tutorial"]), 0.8, True
        ),
        "T2 c=1 p50 vs LangServe chain": target(
            ratio(single(gg)["p50_ms"], single(chain)["p50_ms"]), 2.0, False
        ),
        "T3 streams/s vs LangServe chain": target(
            ratio(gg["streams"]["streams_per_second"], chain["streams"]["streams_per_second"]),
            0.7,
            True,
        ),
        "T3 TTFT p50 vs LangServe chain": target(
            ratio(gg["streams"]["ttft_p50_ms"], chain["streams"]["ttft_p50_ms"]), 1.5, False
        ),
        "T3 paced streams carried vs LangServe chain": target(
            ratio(paced(gg)["capacity"], paced(chain)["capacity"]), 0.7, True
        ),
        "T3 KB of RSS per open paced stream": target(paced(gg)["kb_per_stream"], 100, False),
        "T4 RSS at start vs LangServe chain": target(
            ratio(gg["rss_mb_at_start"], chain["rss_mb_at_start"]), 1.5, False
        ),
        "T4 start-up seconds": target(gg["startup_seconds"], 3.0, False),
        "T5 late turns vs turns 2-6 of a session": target(
            gg["long_session"]["late_over_early"], 1.1, False
        ),
        "T6 exact-cache hit c=1 p50 vs LangServe chain c=1 p50": target(
            ratio(gg["paced"]["cache_hit_c1"]["p50_ms"], single(chain)["p50_ms"]), 1.0, False
        ),
    }


def row(name: str, server: dict[str, Any]) -> str:
    high, low, stream = top(server), single(server), server["streams"]
    ttft = stream["ttft_p50_ms"]
    cells = [
        NAMES.get(name, name),
        f"{high['requests_per_second']:,.0f}",
        f"{high['cpu_ms_per_request']:.2f}",
        f"{low['p50_ms']:.2f} ms",
        f"{stream['streams_per_second']:,.0f}, " + ("-" if ttft is None else f"{ttft:.0f} ms"),
        f"{server['rss_mb_at_start']:.0f} MB",
        f"{server['startup_seconds']:.1f} s",
    ]
    return "| " + " | ".join(cells) + " |"


def t1_floor(servers: dict[str, Any]) -> str | None:
    """T1's must as time per request (at the highest concurrency the server's core is busy
    throughout, so a request costs 1000 / req/s ms), beside what serving the same four-node
    graph through LangServe takes with no state at all."""
    if "naive_graph_stateless" not in servers:
        return None

    def ms(name: str) -> float:
        return 1000 / float(top(servers[name])["requests_per_second"])

    concurrency = max(int(c) for c in servers["graphgate"]["invoke"])
    allowed, floor = ms("naive_graph") / 3, ms("naive_graph_stateless")
    rest = (
        f"leaves {allowed - floor:.2f} ms"
        if allowed >= floor
        else f"is already {floor - allowed:.2f} ms over it"
    )
    return (
        f"T1's must in time per request at c={concurrency} (1000 / req/s): 3x the naive"
        f" graph's req/s allows {allowed:.2f} ms; the same graph served with no state at all takes"
        f" {floor:.2f} ms, which {rest} for everything graphgate adds (session memory, limits,"
        f" budgets, usage, API keys, metrics, the access line); graphgate takes"
        f" {ms('graphgate'):.2f} ms."
    )


def readme_table(result: dict[str, Any]) -> str:
    servers = result["servers"]
    concurrency = max(int(c) for c in servers["graphgate"]["invoke"])
    streams = result.get("plan", {}).get("streams", 64)
    lines = [
        f"Measured {result['date']} at commit {result['commit']} on {result['machine']['cpu']}"
        f" ({result['machine']['cores']} cores), {result['plan']['seconds_per_point']:.0f} s"
        " per point:",
        "",
        f"| server | invoke req/s, c={concurrency} | CPU ms/request | c=1 p50 |"
        f" {streams} concurrent streams: streams/s, TTFT p50 | RSS at start | start-up |",
        "|---|---|---|---|---|---|---|",
        *(row(name, server) for name, server in servers.items()),
        "",
        "| target | ratio | bound | met |",
        "|---|---|---|---|",
    ]
    for name, t in result["targets"].items():
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        bound = ("≥ " if t["at_least"] else "≤ ") + f"{t['bound']:g}"
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {name} | {value} | {bound} | {met} |")
    if floor := t1_floor(servers):
        lines += ["", floor]
    if savers := result.get("savers"):
        costs = ", ".join(f"{n} {ms:.2f} ms" for n, ms in savers["cpu_ms_per_turn"].items())
        lines += ["", f"Session savers, CPU per turn in process: {costs}."]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    servers = result["servers"]
    names = list(servers)
    figure, ((rps, latency), (ttft, memory)) = plt.subplots(2, 2, figsize=(13, 9))
    for name, server in servers.items():
        points = sorted((int(c), f["requests_per_second"]) for c, f in server["invoke"].items())
        rps.plot([c for c, _ in points], [r for _, r in points], marker="o", label=name)
    rps.set(title="invoke throughput", xlabel="concurrent clients", ylabel="requests/s")
    rps.set_yscale("log")
    rps.legend(fontsize=8)
    x = range(len(names))
    for offset, share in ((-0.27, "p50_ms"), (0.0, "p90_ms"), (0.27, "p99_ms")):
        latency.bar(
            [i + offset for i in x], [top(servers[n])[share] for n in names], 0.27, label=share
        )
    latency.set(title="invoke latency at the highest concurrency", ylabel="ms")
    latency.set_xticks(list(x), names, rotation=20, fontsize=8)
    latency.legend(fontsize=8)
    ttft.bar(names, [servers[n]["streams"]["ttft_p50_ms"] or 0 for n in names])
    ttft.set(title="time to first token, p50 (64 concurrent streams)", ylabel="ms")
    ttft.tick_params(axis="x", rotation=20, labelsize=8)
    memory.bar([i - 0.2 for i in x], [servers[n]["rss_mb_at_start"] for n in names], 0.4)
    memory.bar([i + 0.2 for i in x], [servers[n]["rss_mb_after_load"] for n in names], 0.4)
    memory.set(title="RSS: at start, after the load", ylabel="MB")
    memory.set_xticks(list(x), names, rotation=20, fontsize=8)
    figure.suptitle(f"graphgate request path, {result['date']}, commit {result['commit']}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# The page whose table `--docs` rewrites, between the markers START and END.
DOCS_PAGE = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:request-path -->", "<!-- /bench:request-path -->"


def replace_marked(text: str, table: str) -> str:
    """`text` with what lies between the benchmark markers replaced by `table`."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}{END}{tail}"
