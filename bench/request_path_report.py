"""What a `make bench` run says: the targets of issue #23, each a ratio (or a figure) within
the run with its bound, the tables of docs/performance.md (invoke by server, then S1's levels
of paced streams for each streamed server) and the charts (invoke throughput and CPU, the
paced streams' gap and time to first token, CPU per delivered token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.paced_streams import GAP_P99_BOUND_MS, TTFT_P99_BOUND_MS
from scripts.processes import ROOT

NAMES = {
    "bare": "bare Starlette endpoint",
    "langserve_chain": "LangServe chain (prompt, model, parser)",
    "tutorial": "tutorial-style FastAPI app (Redis limit, Redis history, chain)",
    "naive_graph": "LangServe + naive 4-node graph, stock AsyncRedisSaver",
    "naive_graph_stateless": "the same graph, no checkpointer (no state)",
    "graphgate": "**graphgate** (full pipeline)",
    "graphgate_traced": "graphgate, tracing on (every span and metric exported over OTLP)",
}
TRACED = "graphgate_traced"
FLOOR = "naive_graph_stateless"


def top(server: dict[str, Any]) -> dict[str, Any]:
    """The invoke figures at the highest concurrency measured."""
    invoke: dict[str, dict[str, Any]] = server["invoke"]
    return invoke[max(invoke, key=int)]


def single(server: dict[str, Any]) -> dict[str, Any]:
    """The invoke figures at the lowest concurrency measured (c=1)."""
    invoke: dict[str, dict[str, Any]] = server["invoke"]
    return invoke[min(invoke, key=int)]


def levels(server: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The server's paced levels measured, by their number of streams."""
    return {level["streams"]: level for level in server["paced"]["levels"]}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def target(value: float | None, bound: float, at_least: bool, at: str) -> dict[str, Any]:
    """A target's value against its bound, and where it was measured."""
    met = None if value is None else (value >= bound if at_least else value <= bound)
    return {"value": value, "bound": bound, "at_least": at_least, "met": met, "at": at}


def compared_level(gg: dict[str, Any], bare: dict[str, Any]) -> tuple[int | None, str]:
    """The level at which S2 sets graphgate's CPU per token beside the bare endpoint's: the
    highest both held (graphgate's capacity when the bare endpoint carries more), else the
    first level both measured; and the reason, for the JSON."""
    both_held = {n for n, level in levels(gg).items() if level["held"]} & {
        n for n, level in levels(bare).items() if level["held"]
    }
    if both_held:
        return max(both_held), "the highest level both held"
    both_measured = set(levels(gg)) & set(levels(bare))
    if both_measured:
        return min(both_measured), "the first level (not held by both)"
    return None, "no level measured by both"


def cpu_per_token_target(gg: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    """S2: graphgate's CPU per delivered token over the bare endpoint's, at one level."""
    streams, why = compared_level(gg, bare)
    if streams is None:
        return target(None, 3.0, False, why)
    value = ratio(
        levels(gg)[streams]["cpu_us_per_token"], levels(bare)[streams]["cpu_us_per_token"]
    )
    return target(value, 3.0, False, f"{streams} streams, {why}")


def memory_target(gg: dict[str, Any]) -> dict[str, Any]:
    """S2: graphgate's KB of RSS per open stream at its capacity (the first level if none
    held)."""
    carried = gg["paced"]["capacity"]
    streams = carried or gg["paced"]["levels"][0]["streams"]
    why = "its capacity" if carried else "the first level (none held)"
    return target(levels(gg)[streams]["kb_per_stream"], 64, False, f"{streams} streams, {why}")


def targets(servers: dict[str, Any]) -> dict[str, Any]:
    """Each target of #23 that this run measures, as a ratio against its reference."""
    gg, bare, chain, floor = (servers[n] for n in ("graphgate", "bare", "langserve_chain", FLOOR))
    top_c = f"c={max(int(c) for c in gg['invoke'])}"
    carried = gg["paced"]["capacity"]
    return {
        "S1 paced streams graphgate carries (must)": target(carried, 500, True, "its capacity"),
        "S1 paced streams graphgate carries (stretch)": target(carried, 1000, True, "its capacity"),
        "S2 CPU per delivered token vs bare endpoint": cpu_per_token_target(gg, bare),
        "S2 KB of RSS per open stream": memory_target(gg),
        "T1 CPU per invoke request vs stateless graph (must)": target(
            ratio(top(gg)["cpu_ms_per_request"], top(floor)["cpu_ms_per_request"]),
            1.5,
            False,
            top_c,
        ),
        "T2 c=1 p50 vs stateless graph": target(
            ratio(single(gg)["p50_ms"], single(floor)["p50_ms"]), 1.5, False, "c=1"
        ),
        "T2 exact-cache hit c=1 p50 vs stateless graph c=1 p50": target(
            ratio(gg["cache_hit_c1"]["p50_ms"], single(floor)["p50_ms"]), 1.0, False, "c=1"
        ),
        "T4 start-up seconds": target(gg["startup_seconds"], 2.5, False, "to ready"),
        "T4 RSS at start vs LangServe chain": target(
            ratio(gg["rss_mb_at_start"], chain["rss_mb_at_start"]), 1.5, False, "at start"
        ),
        "T5 late turns vs turns 2-6 of a session": target(
            gg["long_session"]["late_over_early"], 1.1, False, "turns 196-200"
        ),
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def invoke_row(name: str, server: dict[str, Any]) -> str:
    high, low = top(server), single(server)
    cells = [
        NAMES.get(name, name),
        f"{high['requests_per_second']:,.0f}",
        f"{high['cpu_ms_per_request']:.2f}",
        f"{low['p50_ms']:.2f} ms",
        f"{server['rss_mb_at_start']:.0f} MB",
        f"{server['startup_seconds']:.1f} s",
    ]
    return "| " + " | ".join(cells) + " |"


def invoke_table(result: dict[str, Any]) -> list[str]:
    servers = result["servers"]
    concurrency = max(int(c) for c in servers["graphgate"]["invoke"])
    rows = [invoke_row(name, server) for name, server in servers.items()]
    if "traced" in servers["graphgate"]:
        rows.append(invoke_row(TRACED, servers["graphgate"]["traced"]))
    return [
        f"| server | invoke req/s, c={concurrency} | CPU ms/request | c=1 p50 | RSS at start"
        " | start-up |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def level_row(level: dict[str, Any]) -> str:
    cpu = level["cpu_us_per_token"]
    cells = [
        f"{level['streams']:,}",
        "yes" if level["held"] else f"**no** ({level['failed']} failed)",
        ms(level["token_gap_p99_ms"]),
        ms(level["ttft_p99_ms"]),
        "-" if (pace := level.get("tokens_per_second_per_stream")) is None else f"{pace:.1f}",
        "-" if cpu is None else f"{cpu:.0f}",
        f"{level['kb_per_stream']:.1f}",
        f"{level['tokens_per_stream']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def streams_tables(result: dict[str, Any]) -> list[str]:
    """S1: a table of levels for each streamed server, under a line saying how they ran."""
    paced = result["plan"]["paced"]
    lines = [
        f"S1, paced streams: replies of {paced['reply_tokens']} tokens at"
        f" {paced['tokens_per_second']} tokens/s; each client opens its first stream within"
        f" {paced['ramp_seconds']:g} s and reopens one as it ends for {paced['seconds']:g} s."
        f" A level holds when no stream failed, gap p99 ≤ {paced['gap_p99_bound_ms']:g} ms and"
        f" TTFT p99 ≤ {paced['ttft_p99_bound_ms']:,.0f} ms.",
    ]
    for name, server in result["servers"].items():
        if "paced" not in server:
            continue
        lines += [
            "",
            f"{NAMES.get(name, name)}: carries {server['paced']['capacity']:,} streams",
            "",
            "| streams | held | gap p99 | TTFT p99 | delivered tokens/s | CPU µs/token | KB/stream"
            " | tokens/stream |",
            "|---|---|---|---|---|---|---|---|",
            *(level_row(level) for level in server["paced"]["levels"]),
        ]
    return lines


def value_cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.2f}"


def targets_table(result: dict[str, Any]) -> list[str]:
    lines = ["| target | value | bound | met | at |", "|---|---|---|---|---|"]
    for name, t in result["targets"].items():
        bound = ("≥ " if t["at_least"] else "≤ ") + f"{t['bound']:g}"
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {name} | {value_cell(t['value'])} | {bound} | {met} | {t['at']} |")
    return lines


def t1_budget(servers: dict[str, Any]) -> str:
    """T1 in milliseconds: what 1.5x the stateless graph's CPU per request allows graphgate."""
    concurrency = max(int(c) for c in servers["graphgate"]["invoke"])
    floor = top(servers[FLOOR])["cpu_ms_per_request"]
    graphgate = top(servers["graphgate"])["cpu_ms_per_request"]
    return (
        f"T1 in CPU per invoke request at c={concurrency}: the same graph served with no state"
        f" at all takes {floor:.2f} ms, so 1.5x allows {1.5 * floor:.2f} ms for the graph and"
        " everything graphgate adds (session memory, limits, budgets, usage, API keys, metrics,"
        f" the access line); graphgate takes {graphgate:.2f} ms."
    )


def readme_table(result: dict[str, Any]) -> str:
    lines = [
        f"Measured {result['date']} at commit {result['commit']} on {result['machine']['cpu']}"
        f" ({result['machine']['cores']} cores), {result['plan']['seconds_per_point']:.0f} s"
        " per invoke point:",
        "",
        *invoke_table(result),
        "",
        *streams_tables(result),
        "",
        *targets_table(result),
        "",
        t1_budget(result["servers"]),
    ]
    if savers := result.get("savers"):
        costs = ", ".join(f"{n} {ms:.2f} ms" for n, ms in savers["cpu_ms_per_turn"].items())
        lines += ["", f"Session savers, CPU per turn in process: {costs}."]
    return "\n".join(lines) + "\n"


def plotted(values: list[float | None]) -> list[float]:
    """`values` with the missing ones as NaN, which a line chart leaves out."""
    return [float("nan") if value is None else value for value in values]


def throughput_chart(axes: Axes, servers: dict[str, Any]) -> None:
    for name, server in servers.items():
        points = sorted((int(c), f["requests_per_second"]) for c, f in server["invoke"].items())
        axes.plot([c for c, _ in points], [r for _, r in points], marker="o", label=name)
    axes.set(title="invoke throughput", xlabel="concurrent clients", ylabel="requests/s")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend(fontsize=8)


def invoke_cpu_chart(axes: Axes, servers: dict[str, Any]) -> None:
    names = list(servers)
    axes.bar(names, [top(servers[n])["cpu_ms_per_request"] for n in names])
    concurrency = max(int(c) for c in servers["graphgate"]["invoke"])
    axes.set(title=f"server CPU per invoke request, c={concurrency}", ylabel="ms")
    axes.tick_params(axis="x", rotation=20, labelsize=8)


def streams_chart(axes: Axes, servers: dict[str, Any]) -> None:
    """S1: gap p99 (solid) and TTFT p99 (dashed) by concurrent streams, with their bounds."""
    for name, server in servers.items():
        if "paced" not in server:
            continue
        measured = server["paced"]["levels"]
        streams = [level["streams"] for level in measured]
        gaps = plotted([level["token_gap_p99_ms"] for level in measured])
        (line,) = axes.plot(streams, gaps, marker="o", label=name)
        axes.plot(
            streams,
            plotted([level["ttft_p99_ms"] for level in measured]),
            marker="s",
            linestyle="--",
            color=line.get_color(),
        )
    axes.axhline(GAP_P99_BOUND_MS, color="grey", linestyle=":", label="gap p99 bound")
    axes.axhline(TTFT_P99_BOUND_MS, color="black", linestyle=":", label="TTFT p99 bound")
    axes.set(
        title="paced streams: gap p99 (solid), TTFT p99 (dashed)",
        xlabel="concurrent streams",
        ylabel="ms",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend(fontsize=8)


def token_cpu_chart(axes: Axes, servers: dict[str, Any]) -> None:
    for name, server in servers.items():
        if "paced" not in server:
            continue
        measured = server["paced"]["levels"]
        axes.plot(
            [level["streams"] for level in measured],
            plotted([level["cpu_us_per_token"] for level in measured]),
            marker="o",
            label=name,
        )
    axes.set(title="server CPU per delivered token", xlabel="concurrent streams", ylabel="µs")
    axes.set_xscale("log")
    axes.legend(fontsize=8)


def chart(result: dict[str, Any], path: Path) -> None:
    servers = result["servers"]
    figure, ((rps, cpu), (streams, tokens)) = plt.subplots(2, 2, figsize=(13, 9))
    throughput_chart(rps, servers)
    invoke_cpu_chart(cpu, servers)
    streams_chart(streams, servers)
    token_cpu_chart(tokens, servers)
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
