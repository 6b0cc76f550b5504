"""Run the benchmarks and write ``bench/results.md``: ``python -m bench.run``.

``--only create|poll_hop|drift|polling|storing|budget`` runs one (repeatable); ``--quick`` shortens
every window (a smoke run, numbers not worth reporting). Each benchmark has its own time
budget and aborts past it; the default windows keep each one under three minutes on a
2-core machine (the whole run takes about seven). Raw JSON of the run goes next to the
Markdown (``bench/results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import budget, create, drift, poll_hop, polling, storing
from bench.common import deadline, log, machine

HERE = Path(__file__).resolve().parent
BUDGET = 200.0  # seconds per benchmark, a safety net above the ~2-2.5 min they take

CREATE_TARGET = 0.6
HOP_TARGET = 0.8  # against the fair raw hop (same I/O)
DRIFT_TARGET_P99 = 1.0


def _verdict(value: float, target: float) -> str:
    return "meets" if value >= target else "**MISSED**"


def _load_note(runs: list[dict[str, Any]], seconds_key: str) -> str:
    busy = [min(100, r["machine_busy_pct"]) for r in runs if r.get("machine_busy_pct") is not None]
    foreign = [r.get("foreign_cpu_s", 0.0) / r[seconds_key] for r in runs if r.get(seconds_key)]
    if not busy:
        return "unknown"
    cores = os.cpu_count() or 1
    return (
        f"machine {min(busy)}-{max(busy)}% busy during the windows; processes outside the"
        f" benchmark used {min(foreign):.2f}-{max(foreign):.2f} of the {cores} cores"
    )


def _per_k(count: int | None, n: int) -> str:
    return "-" if count is None or not n else f"{1000 * count / n:.1f}"


def _create_md(r: dict[str, Any]) -> list[str]:
    p = r["params"]
    best = r["best"]
    out = [
        "## 1. Create: `POST /v1/videos` (text-to-video, JSON)",
        "",
        f"Closed loop, {p['generator']}, {p['concurrency']} keep-alive connections,"
        f" {p['warmup']:g} s warm-up then {p['seconds']:g} s measured per run; users cycle"
        f" over {p['users']} accounts; targets alternated over {p['rounds']} rounds, best run"
        " shown. Tables truncated, balances reset and Redis flushed before every run.",
        "",
        "| target | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU µs/req"
        " | new PG connections / 1000 req | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "bare": "bare Starlette JSON (upper bound)",
        "raw": "raw asyncpg reference",
        "ours": "**ours** (`google-video api`)",
    }
    for name in ("bare", "raw", "ours"):
        if name not in best:
            continue
        b = best[name]
        out.append(
            f"| {names[name]} | {b['rps']:.0f} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f}"
            f" | {b['server_cpu_us_per_req']} | {b['postgres_cpu_us_per_req']}"
            f" | {_per_k(b.get('new_pg_sessions'), b['requests'])}"
            f" | {b['non_2xx'] + b['socket_errors']} |"
        )
    ours, raw = best["ours"], best["raw"]
    cpu_ratio = raw["server_cpu_us_per_req"] / max(1, ours["server_cpu_us_per_req"])
    out += [
        "",
        f"- **ours / raw = {r['ratio_ours_raw']:.2f}** (target ≥ {CREATE_TARGET}):"
        f" {_verdict(r['ratio_ours_raw'], CREATE_TARGET)}.",
        f"- Server CPU per request, raw / ours = {cpu_ratio:.2f} (the same comparison by"
        " CPU cost, less sensitive to what else runs on the machine).",
        f"- raw / bare = {r['ratio_raw_bare']:.2f}; ours / bare = {r['ratio_ours_bare']:.3f}.",
        f"- Background: {_load_note(r['runs'], 'seconds')}.",
        f"- API log lines written during the whole benchmark: {r['api_log_lines']}.",
        "",
        "<details><summary>every run</summary>",
        "",
        "| round | target | req/s | p50 ms | p99 ms | server µs/req | PG µs/req"
        " | loadgen CPU s | machine busy % | foreign CPU s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in r["runs"]:
        out.append(
            f"| {run['round']} | {run['target']} | {run['rps']:.0f} | {run['p50_ms']:.1f}"
            f" | {run['p99_ms']:.1f} | {run['server_cpu_us_per_req']}"
            f" | {run['postgres_cpu_us_per_req']} | {run['cpu'].get('loadgen', 0):.2f}"
            f" | {min(100, run['machine_busy_pct'])} | {run['foreign_cpu_s']} |"
        )
    out += ["", "</details>", ""]
    return out


def _hop_md(r: dict[str, Any]) -> list[str]:
    p = r["params"]
    best = r["best"]
    out = [
        "## 2. Poll hop: self-rescheduling jobs in one worker process",
        "",
        f"{p['chains']} chains, worker max_jobs {p['max_jobs']}, ARQ poll_delay"
        f" {p['poll_delay_s']} s, next hop deferred {p['defer_s'] * 1000:g} ms; per run a fresh"
        f" worker, first hops awaited, {p['warmup']:g} s warm-up, {p['seconds']:g} s counted;"
        f" targets alternated over {p['rounds']} rounds, best run shown.",
        "",
        "| target | hops/s | chains advancing | worker CPU µs/hop | PostgreSQL µs/hop"
        " | simulator µs/hop | worker log lines/hop | new PG connections / 1000 hops |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "fair": "fair raw hop (asyncpg SELECT, httpx GET, asyncpg UPDATE, re-enqueue)",
        "raw": "raw ARQ self-re-enqueue (no I/O)",
        "ours": "**ours** (`poll_task`, INFO logs)",
        "ours-warn": "ours at LOG_LEVEL=WARNING",
        "before": "ours before, from `--baseline` (an earlier checkout)",
    }
    for name in ("fair", "raw", "ours", "ours-warn", "before"):
        if name not in best:
            continue
        b = best[name]
        per_hop = b["log_lines"] / b["hops"] if b["hops"] else 0
        out.append(
            f"| {names[name]} | {b['hops_per_s']:.0f} | {b['chains_advanced']}/{p['chains']}"
            f" | {b['worker_cpu_us_per_hop']} | {b['postgres_cpu_us_per_hop']}"
            f" | {b['simulator_cpu_us_per_hop']} | {per_hop:.2f}"
            f" | {_per_k(b.get('new_pg_sessions'), b['hops'])} |"
        )
    ours, fair = best["ours"], best["fair"]
    cpu_ratio = fair["worker_cpu_us_per_hop"] / max(1.0, ours["worker_cpu_us_per_hop"])
    by_round = r.get("ratio_ours_fair_by_round", [])
    paired = ", ".join(f"{x:.2f}" for x in by_round)
    median = f", median {statistics.median(by_round):.2f}" if by_round else ""
    out += [
        "",
        f"- **ours / fair = {r['ratio_ours_fair']:.2f}** (best runs; per round: {paired}"
        f"{median}; target ≥ {HOP_TARGET}): {_verdict(r['ratio_ours_fair'], HOP_TARGET)}.",
        f"- Worker CPU per hop, fair / ours = {cpu_ratio:.2f}.",
    ]
    if "ratio_ours_raw" in r:
        out.append(f"- ours / raw ARQ self-re-enqueue (no I/O) = {r['ratio_ours_raw']:.2f}.")
    if "ratio_before_fair" in r:
        before = ", ".join(f"{x:.2f}" for x in r.get("ratio_before_fair_by_round", []))
        out.append(f"- before / fair = {r['ratio_before_fair']:.2f} (per round: {before}).")
    if "ratio_ours_warn_raw" in r:
        out.append(f"- ours at WARNING / raw = {r['ratio_ours_warn_raw']:.2f}.")
    out += [
        f"- Tasks that left `running` during the benchmark: {r['tasks_not_running_at_end']}"
        " (must be 0: every hop saw an in-progress upstream task).",
        f"- Background: {_load_note(r['runs'], 'seconds')}.",
        "",
        "<details><summary>every run</summary>",
        "",
        "| round | target | hops/s | chains | worker µs/hop | PG µs/hop | sim µs/hop"
        " | sim polls | machine busy % | foreign CPU s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in r["runs"]:
        out.append(
            f"| {run['round']} | {run['target']} | {run['hops_per_s']:.0f}"
            f" | {run['chains_advanced']} | {run['worker_cpu_us_per_hop']}"
            f" | {run['postgres_cpu_us_per_hop']} | {run['simulator_cpu_us_per_hop']}"
            f" | {run['sim_polls'] if run['sim_polls'] is not None else '-'}"
            f" | {min(100, run['machine_busy_pct'])} | {run['foreign_cpu_s']} |"
        )
    out += ["", "</details>", ""]
    return out


def _drift_md(r: dict[str, Any]) -> list[str]:
    p = r["params"]
    d = r["drift"]
    cpu_per_hop = 1e6 * r["cpu"].get("worker", 0) / max(1, r["hops"])
    capacity = 1e6 / max(1.0, cpu_per_hop)
    out = [
        "## 3. Schedule drift: one worker tracking many running tasks",
        "",
        f"{p['tasks']} running tasks (simulator, `[sim:duration=100000]`), poll interval"
        f" {p['interval']:g} s (MIN = MAX), first hops spread over one interval; one product"
        f" worker; drift = hop start - scheduled time, from ARQ's own job score, over"
        f" {p['seconds']:g} s after {p['warmup']:g} s warm-up. Demand:"
        f" {p['tasks'] / p['interval']:.0f} hops/s.",
        "",
        "| tasks | demand hops/s | achieved hops/s | drift p50 s | drift p99 s | drift max s"
        " | worker CPU % | worker CPU µs/hop |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {p['tasks']} | {p['tasks'] / p['interval']:.0f} | {r['hops_per_s']:.0f}"
        f" | {d['p50']:.3f} | {d['p99']:.3f} | {d['max']:.3f} | {r['worker_cpu_pct']:.0f}"
        f" | {1e6 * r['cpu'].get('worker', 0) / max(1, r['hops']):.0f} |",
        "",
        f"- p99 ≤ {DRIFT_TARGET_P99:g} s at {p['tasks']} tasks:"
        f" {'meets' if d['p99'] <= DRIFT_TARGET_P99 else '**MISSED**'}"
        " (the target is 5,000 tasks).",
        f"- Headroom: at {cpu_per_hop:.0f} µs of worker CPU per hop one worker would"
        f" saturate a core at about {capacity:.0f} hops/s. The product's pacing (0.2 *"
        " elapsed, within [2, 30] s) polls younger tasks faster than this run's"
        f" {p['interval']:g} s, so a real mix of {p['tasks']} tasks asks for more hops/s"
        " than this; whether this run meets the target depends on how much CPU the worker"
        " gets.",
    ]
    sat = r.get("saturation")
    if sat:
        out.append(
            f"- **One worker sustains {sat['hops_per_s']:.0f} hops/s** flat out (every task"
            f" due at once, 1 ms pacing, {sat['seconds']:g} s counted after the first hops;"
            f" worker {sat['worker_cpu_pct']:.0f}% of a core, {sat['worker_cpu_us_per_hop']}"
            f" µs/hop, machine {min(100, sat['machine_busy_pct'])}% busy): {p['tasks']} tasks"
            f" stay on schedule while their mean interval is above"
            f" ~{p['tasks'] / max(1.0, sat['hops_per_s']):.0f} s."
        )
    out += [
        f"- Background: {_load_note([r], 'seconds')}.",
        "",
    ]
    return out


def _at_most(value: float, target: float) -> str:
    return "meets" if value <= target else "**MISSED**"


def _summary_rows(results: dict[str, Any]) -> list[str]:
    """Summary rows of the benchmarks that keep their own sections (polling, storing,
    budget): the figure each target is stated on, and the verdict."""
    rows: list[str] = []
    if "polling" in results:
        p = results["polling"]
        runs = p["runs"]
        ours, fixed = runs.get("ours", {}), runs.get("fixed", {})
        rows += [
            f"| polling-only completion lag p95 (scaled s) | {ours['latency']['p95']:.2f}"
            f" | {fixed['latency']['p95']:.2f} (fixed 10 s) | {p['lag_p95_ratio']:.2f} | -"
            f" | ≤ {polling.LAG_RATIO_TARGET} | {_at_most(p['lag_p95_ratio'], 0.5)} |",
            f"| upstream GETs per task | {ours['gets_per_task']['mean']:.2f}"
            f" | {fixed['gets_per_task']['mean']:.2f} (fixed 10 s) | {p['gets_ratio']:.2f} | -"
            f" | ≤ 1 | {_at_most(p['gets_ratio'], 1.0)} |",
            f"| completion lag p95 with callbacks, s | {p['callback_p95']:.2f} | - | - | -"
            f" | ≤ {polling.CALLBACK_P95_TARGET} s"
            f" | {_at_most(p['callback_p95'], polling.CALLBACK_P95_TARGET)} |",
        ]
    if "storing" in results:
        st = results["storing"]
        o, r = st["best"]["ours-s3"], st["best"]["raw-s3"]
        c, w = st["best"]["ours-s3-crc32"], st["best"]["raw-s3-when-required"]
        size = st["params"]["size_mib"]
        rss = st["peak_rss_growth_mib"]["ours-s3"]
        rss_target = storing.RSS_TARGET_MIB * size / 1024
        rows += [
            f"| storing {size} MiB into S3 (moto), MiB/s | {o['mib_s']:.0f} | {r['mib_s']:.0f}"
            f" (raw boto3) | {st['ratio_s3']:.2f}"
            f" | {o['cpu_s_per_gib']:.2f} / {r['cpu_s_per_gib']:.2f} CPU s/GiB"
            f" | ≥ {storing.THROUGHPUT_TARGET} | {_verdict(st['ratio_s3'], 0.8)} |",
            f"| storing, `S3_CHECKSUM_ALGORITHM=CRC32` (opt-in), MiB/s"
            f" | {c['mib_s']:.0f} | {r['mib_s']:.0f} (raw boto3) | {st['ratio_s3_crc32']:.2f}"
            f" | {c['cpu_s_per_gib']:.2f} / {r['cpu_s_per_gib']:.2f} CPU s/GiB"
            f" | ≥ {storing.THROUGHPUT_TARGET} | {_verdict(st['ratio_s3_crc32'], 0.8)} |",
            f"| storing, like for like: raw boto3 with checksums only where required, MiB/s"
            f" | {o['mib_s']:.0f} | {w['mib_s']:.0f} (raw boto3, `when_required`)"
            f" | {st['ratio_s3_like_for_like']:.2f}"
            f" | {o['cpu_s_per_gib']:.2f} / {w['cpu_s_per_gib']:.2f} CPU s/GiB"
            " | - | (not a target) |",
            f"| storing: peak worker RSS growth, MiB | {rss:.0f}"
            f" | {st['peak_rss_growth_mib']['raw-s3']:.0f} (raw boto3) | - | -"
            f" | ≤ {rss_target:g} | {_at_most(rss, rss_target)} |",
        ]
    if "budget" in results:
        b = results["budget"]
        rate = b["params"]["rate"]
        worst = max((one["max_gets_per_s_10s"] for one in b["budget"]), default=float("nan"))
        failed = sum(one["failed"] for one in b["budget"])
        rows.append(
            f"| GETs/s, worst 10 s window, budget {rate:g}/s, {b['params']['tasks']} tasks,"
            f" 3 workers | {worst:.1f} | - | - | - | ≤ {1.1 * rate:g}, nothing failed"
            f" | {_at_most(worst, 1.1 * rate) if failed == 0 else '**MISSED**'} |"
        )
    return rows


def write_md(results: dict[str, Any], path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmarks (docs/architecture.md, Performance targets)",
        "",
        f"Generated by `python -m bench.run` on {results['date']}; total runtime"
        f" {results['wall_seconds']:.0f} s. Absolute numbers depend on the machine and on"
        " whatever else runs on it; the ratios compare targets measured alternately in the"
        " same run.",
        "",
        "| machine | |",
        "|---|---|",
        f"| cores (nproc) | {m['nproc']} |",
        f"| CPU | {m['cpu']} |",
        f"| memory | {m['memory']} |",
        f"| Python | {m['python']} |",
        f"| PostgreSQL | {m['postgres']} (private cluster, fsync off) |",
        f"| Redis | {m['redis']} (private, no persistence) |",
        f"| load generator | {m['wrk']} |",
        f"| load average at start / end | {results['loadavg_start']} / {results['loadavg_end']} |",
        "",
        "## Summary",
        "",
        "| measure | ours | reference | ratio | CPU per unit, ours / reference"
        " | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    if "create" in results:
        c = results["create"]
        o, r = c["best"]["ours"], c["best"]["raw"]
        lines.append(
            f"| create req/s | {o['rps']:.0f} | {r['rps']:.0f} (raw asyncpg)"
            f" | {c['ratio_ours_raw']:.2f}"
            f" | {o['server_cpu_us_per_req']} / {r['server_cpu_us_per_req']} µs"
            f" | ≥ {CREATE_TARGET} | {_verdict(c['ratio_ours_raw'], CREATE_TARGET)} |"
        )
    if "poll_hop" in results:
        h = results["poll_hop"]
        o, r = h["best"]["ours"], h["best"]["fair"]
        lines.append(
            f"| poll hops/s, one worker | {o['hops_per_s']:.0f} | {r['hops_per_s']:.0f}"
            f" (fair raw hop, same I/O) | {h['ratio_ours_fair']:.2f}"
            f" | {o['worker_cpu_us_per_hop']:.0f} / {r['worker_cpu_us_per_hop']:.0f} µs"
            f" | ≥ {HOP_TARGET} | {_verdict(h['ratio_ours_fair'], HOP_TARGET)} |"
        )
    if "drift" in results:
        d = results["drift"]
        ok = d["drift"]["p99"] <= DRIFT_TARGET_P99
        lines.append(
            f"| drift p99 s, {d['params']['tasks']} running tasks polled every"
            f" {d['params']['interval']:g} s | {d['drift']['p99']:.3f} | - | - | -"
            f" | ≤ {DRIFT_TARGET_P99:g} s at 5,000 tasks"
            f" | {'meets (see headroom)' if ok else '**MISSED**'} |"
        )
        if d.get("saturation"):
            lines.append(
                f"| hops/s one worker sustains (every task due at once) |"
                f" {d['saturation']['hops_per_s']:.0f} | - | - | - | ≥ 167 (5,000 / 30 s) |"
                f" {_verdict(d['saturation']['hops_per_s'], 5000 / 30)} |"
            )
    lines += _summary_rows(results)
    lines.append("")
    if "create" in results:
        lines += _create_md(results["create"])
    if "poll_hop" in results:
        lines += _hop_md(results["poll_hop"])
    if "drift" in results:
        lines += _drift_md(results["drift"])
    if "polling" in results:
        lines += polling.markdown(results["polling"]).splitlines()
    if "storing" in results:
        lines.append(storing.markdown(results["storing"]))
    if "budget" in results:
        lines += budget.markdown(results["budget"])
    lines += [
        "## Method and honest notes",
        "",
        "- **Why the gaps**: `bench/FINDINGS.md` (written by hand, dated; re-check it against"
        " a fresh run).",
        "- **Shared cores.** Everything runs on this one machine: the server under test,"
        " PostgreSQL, Redis, the simulator (poll hop) and the load generator all share its"
        " cores. `wrk -t1` (C, one thread) is used when installed because it costs far less"
        " CPU than a Python generator; its CPU is in the per-run tables. The poll-hop"
        " reference needs neither PostgreSQL nor the simulator, ours needs both, and they"
        " take CPU from the same cores: part of the gap is that cost, by design of the hop.",
        "- **Other tenants.** When the machine is shared (other sessions running test"
        " suites), absolute numbers drop and get noisy; the `foreign CPU` columns show how"
        " much CPU went to processes outside the benchmark during each window. The ratios"
        " are of targets run alternately in the same run, best of the rounds each; the CPU"
        " per request/hop is the steadier comparison.",
        "- **The create reference** (`bench/ref_app.py`) does what docs/architecture.md describes"
        " (conditional credit UPDATE + task INSERT + ledger INSERT in one transaction, then"
        " the ARQ enqueue) on the project's own tables, plus a cached API-key lookup; it does"
        " not do ours' extra work (the per-client and per-user rate limits, a Redis round"
        " trip each; pydantic validation and serialisation; the request-id, access-log and"
        " metrics middlewares; logging). The bare endpoint parses the same JSON body and"
        " answers a small JSON object.",
        "- **Users.** Creates cycle over many accounts so they do not all queue on one"
        " account row (the conditional UPDATE locks it until commit); one user"
        " hammered by 32 connections would measure that lock, for ours and raw alike.",
        "- **The poll-hop reference** (`bench/fair_worker.py`) is a raw ARQ job doing the"
        " hop's I/O (asyncpg SELECT of the hop's columns, httpx GET at the same simulator,"
        " asyncpg conditional UPDATE, deferred re-enqueue) under the same max_jobs /"
        " poll_delay / uvloop; it writes no history row (ours appends a `task_activity` row"
        " in the UPDATE's round trip). `bench/raw_worker.py`, an ARQ job that only"
        " re-enqueues itself, is an extra row (the cost of ARQ alone).",
        "- **Not measured here**: several API or worker processes at once, webhooks,"
        " image-to-video creates (multipart, stored inputs), idempotency keys."
        + (
            ""
            if "drift" in results and results["drift"]["params"]["tasks"] >= 5000
            else " The 5,000-running-task drift target is measured only at the task count"
            " shown in section 3 (or not at all if that section is absent): tracking 5,000"
            " needs ~5,000 / interval hops/s, and the poll-hop numbers above bound what one"
            " worker can do."
        ),
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        choices=["create", "poll_hop", "drift", "polling", "storing", "budget"],
        action="append",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: short windows")
    parser.add_argument("--no-drift", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument(
        "--from-json", type=Path, help="only rewrite the Markdown from a saved results.json"
    )
    args = parser.parse_args()
    if args.from_json:
        write_md(json.loads(args.from_json.read_text()), args.out)
        return
    wanted = args.only or ["create", "poll_hop", "polling", "storing", "budget"] + (
        [] if args.no_drift else ["drift"]
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if "create" in wanted:
        log("create benchmark")
        with deadline(BUDGET, "create benchmark"):
            results["create"] = (
                create.run(seconds=3, warmup=1, rounds=1) if args.quick else create.run()
            )
    if "poll_hop" in wanted:
        log("poll hop benchmark")
        with deadline(2 * BUDGET, "poll hop benchmark"):  # 5 rounds of 3 targets, ~13 s each
            results["poll_hop"] = (
                poll_hop.run(seconds=3, warmup=1, rounds=1, chains=100)
                if args.quick
                else poll_hop.run()
            )
    if "drift" in wanted:
        log("drift benchmark")
        with deadline(BUDGET, "drift benchmark"):
            results["drift"] = (
                drift.run(tasks=200, seconds=5, warmup=3, saturation_seconds=5)
                if args.quick
                else drift.run()
            )
    if "polling" in wanted:
        log("polling benchmark")
        with deadline(240.0, "polling benchmark"):
            results["polling"] = polling.section(args.quick)[1]
    if "storing" in wanted:
        log("storing benchmark")
        with deadline(storing.BUDGET, "storing benchmark"):
            results["storing"] = storing.run(256, rounds=1) if args.quick else storing.run()
    if "budget" in wanted:
        log("upstream budget benchmark")
        with deadline(3 * BUDGET, "upstream budget benchmark"):  # two runs of ~2.5 min
            results["budget"] = budget.run(tasks=200, seconds=30) if args.quick else budget.run()
    results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["wall_seconds"] = time.monotonic() - started
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    write_md(results, args.out)
    log(f"wrote {args.out} in {results['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
