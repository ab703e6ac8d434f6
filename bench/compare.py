"""counterd side by side with ultralytics (solutions.ObjectCounter + BYTETracker) and supervision
(ByteTrack + LineZone): hot-loop speed, end-to-end speed and count accuracy, live headroom.

    python bench/compare.py            # the full run
    python bench/compare.py --quick    # fewer rounds and frames; under 10 minutes on a 2-core box

On first run it builds its own environment outside the repository (bench/compare_env.py:
~/.cache/counterd-bench/env-<hash>, ultralytics 8.4.190 + supervision 0.30.9 + this checkout) and
re-runs itself there. No weights are downloaded: the ultralytics pipeline runs the shared ONNX model
through its ONNX Runtime backend (YOLO_OFFLINE=1). Every measurement is pinned to one core (--core,
default the last one this process may use); BLAS/OpenMP/torch/ONNX Runtime use one thread.

The last line is machine-readable:
    RESULT hotloop_speedup=<x> e2e_fps_ratio=<y> acc_counterd=<a> acc_ultralytics=<b> acc_supervision=<c>
speedup: the faster anchor's hot-loop ms/frame at 50 objects over counterd's; e2e_fps_ratio:
counterd's frames/s over the faster anchor's (per CPU-second, see compare_e2e.py); accuracies over
all lines of all line sets, each anchor in its better anchor-point configuration. counterd is the
loop of `counterd process` at its defaults (the detection stride on); the line goes on with the
same two figures for counterd without the stride (every frame detected unless the motion gate
rests it), with detector.mosaic, and with the mosaic but not the stride
(e2e_fps_ratio_no_stride=..., acc_counterd_no_stride=..., _mosaic, _no_stride_mosaic), then the
live run's largest share of a core and total dropped frames, then cameras_per_box (bench/fleet.py:
the most cameras, one `counterd run` each, at 10 fps 640x480 with no drops and coverage >= 99%).
--quick: 150-frame hot-loop streams and 3 rounds, supervision's speed pass over 100 frames, 10 s live
runs with gating only, fleet of 1-4 cameras for 20 s each.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare_env  # noqa: E402  (standard library only)

PLOT = HERE / "compare_hotloop.png"
# counterd as `counterd process` runs it (defaults: the stride on), then without gating.stride and
# with detector.mosaic; each name's suffix is its RESULT key (variant_key).
COUNTERD_VARIANTS = ("counterd", "counterd - stride", "counterd + mosaic", "counterd - stride + mosaic")


def variant_key(name: str) -> str:
    """"counterd - stride + mosaic" -> "no_stride_mosaic": the RESULT field suffix."""
    return "_".join(("no_" if sign == "-" else "") + option
                    for sign, option in zip(name.split()[1::2], name.split()[2::2]))


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and frames (under 10 minutes)")
    p.add_argument("--core", type=int, help="the CPU for the hot loop and live runs (default: the last one)")
    p.add_argument("--serial", action="store_true",
                   help="run the end-to-end pipelines one after another on --core (default: two at a "
                        "time on two cores, each pinned to its own; ratios use CPU time either way)")
    p.add_argument("--out", help="directory for the raw JSON results (default: a fresh one in the cache)")
    p.add_argument("--only", choices=("hotloop", "e2e", "live", "fleet"), action="append",
                   help="run only these parts (repeatable); the RESULT line needs all four")
    p.add_argument("--no-plot", action="store_true", help="leave bench/compare_hotloop.png alone")
    p.add_argument("--list-lines", action="store_true", help="print the line sets and their true crossings")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, flush=True)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Linux {platform.release()}, Python "
            f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.1f}")


def versions() -> str:
    import importlib.metadata as md
    names = ("counterd", "ultralytics", "supervision", "torch", "onnxruntime", "numpy", "opencv-python")
    return ", ".join(f"{n} {md.version(n)}" for n in names)


def child(script: str, *args, core: int) -> subprocess.Popen:
    """Start one bench/compare_*.py measurement in its own process, pinned to one core."""
    cmd = [sys.executable, str(HERE / script), *map(str, args)]
    return subprocess.Popen(cmd, preexec_fn=lambda: os.sched_setaffinity(0, {core}))


def wait_all(procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            rc = proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise SystemExit(f"compare: {' '.join(map(str, proc.args[1:3]))} ran past {timeout:.0f} s")
        if rc != 0:
            raise SystemExit(f"compare: {' '.join(map(str, proc.args[1:3]))} failed with exit code {rc}")


# ---------------------------------------------------------------------------------------------


def run_hotloop(args, out: Path) -> dict:
    os.sched_setaffinity(0, {args.core})
    import compare_hotloop
    import compare_e2e
    frames, rounds = (150, 3) if args.quick else (400, 7)
    log(f"\n## Hot loop: tracker + counter on synthetic detections, {frames} frames, median of {rounds} "
        f"rounds, core {args.core}")
    result = compare_hotloop.measure(frames=frames, rounds=rounds, model=str(compare_e2e.MODEL), log=log)
    (out / "hotloop.json").write_text(json.dumps(result, indent=1))
    return result


def run_e2e(args, out: Path) -> dict:
    import compare_e2e
    sv_frames = 100 if args.quick else None
    log(f"\n## End to end: {compare_e2e.VIDEO.name}, {compare_e2e.MODEL.name}, each pipeline pinned to one "
        f"core of {args.cores}")
    dets = out / "ultralytics_detections.npz"
    jobs = {
        "ultralytics": ["--record", dets],
        "counterd": [],
        "counterd - stride": ["--no-stride"],
        "counterd + mosaic": ["--mosaic"],
        "counterd - stride + mosaic": ["--no-stride", "--mosaic"],
        "supervision": ["--detections", dets] + (["--frames", sv_frames] if sv_frames else []),
    }
    # One lane of jobs per core, each job pinned to its lane's core; supervision needs the
    # detections the ultralytics run records, so it follows it in the same lane.
    lanes = [["ultralytics", "counterd + mosaic", "supervision"],
             ["counterd", "counterd - stride", "counterd - stride + mosaic"]]
    if len(args.cores) < 2:
        lanes = [["ultralytics", "supervision", "counterd", "counterd - stride", "counterd + mosaic",
                  "counterd - stride + mosaic"]]
    results, failures = {}, []

    def run_lane(names, core):
        for name in names:
            started = time.perf_counter()
            path = out / f"e2e_{name.replace(' + ', '_')}.json"
            try:
                wait_all([child("compare_e2e.py", name.split()[0], "--out", path, "--core", core, *jobs[name],
                                core=core)], timeout=3600)
            except SystemExit as exc:
                failures.append(str(exc))
                return
            r = results[name] = json.loads(path.read_text())
            log(f"{name:18s} {r['frames']} frames: {r['fps']:.2f} frames/s wall, {r['fps_cpu']:.2f} per "
                f"CPU-second" + (f"; detector on {r['detected_frames']} frames in {r['inferences']} inferences"
                                 if "inferences" in r else "")
                + f" ({time.perf_counter() - started:.0f} s, core {core})")

    threads = [threading.Thread(target=run_lane, args=(names, core)) for names, core in zip(lanes, args.cores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit("; ".join(failures))
    truth = compare_e2e.true_counts()
    acc = {name: compare_e2e.accuracy_by_set(results[name]["counts"], truth) for name in COUNTERD_VARIANTS}
    acc.update({
        "ultralytics (centre, as shipped)": compare_e2e.accuracy_by_set(results["ultralytics"]["counts"], truth),
        "ultralytics (bottom-centre)": compare_e2e.accuracy_by_set(results["ultralytics"]["counts_bottom_anchor"], truth),
        "supervision (bottom-centre)": compare_e2e.accuracy_by_set(results["supervision"]["counts"], truth),
        "supervision (corners, default)": compare_e2e.accuracy_by_set(results["supervision"]["counts_corner_anchors"], truth),
    })
    per_line = {name: {"true": truth[name],
                       **{v: results[v]["counts"][name] for v in COUNTERD_VARIANTS},
                       "ultralytics": results["ultralytics"]["counts"][name],
                       "ultralytics_bottom": results["ultralytics"]["counts_bottom_anchor"][name],
                       "supervision": results["supervision"]["counts"][name],
                       "supervision_corners": results["supervision"]["counts_corner_anchors"][name]}
                for name, _, _ in compare_e2e.ALL_LINES}
    summary = {"runs": results, "accuracy": acc, "per_line": per_line, "truth": truth}
    (out / "e2e.json").write_text(json.dumps(summary, indent=1))
    base, best = results["counterd"]["fps_cpu"], max(results["ultralytics"]["fps_cpu"], results["supervision"]["fps_cpu"])
    log("\nframes per CPU-second, and what each change bought (x counterd as shipped, x the faster anchor):")
    for name in ("ultralytics", "supervision") + COUNTERD_VARIANTS:
        r = results[name]
        log(f"  {name:28s} {r['fps_cpu']:6.2f}  x{r['fps_cpu'] / base:4.2f}  x{r['fps_cpu'] / best:4.2f}"
            + (f"  ({r['inferences']} inferences for {r['frames'] + 1} frames)" if "inferences" in r else ""))
    sets = list(compare_e2e.LINE_SETS) + ["all"]
    log("\ncount accuracy (1 - sum|counted - true| / sum(true)), by line set:")
    log(f"{'':34s}" + "".join(f"{s:>11s}" for s in sets))
    for who, by_set in acc.items():
        log(f"{who:34s}" + "".join(f"{by_set[s]:11.3f}" for s in sets))
    log("\nper line, in/out: true | counterd, - stride, + mosaic, - stride + mosaic | ultralytics (centre, bottom) | "
        "supervision (bottom, corners)")
    for name, row in per_line.items():
        f = lambda c: f"{c['in']:2d}/{c['out']:<2d}"   # noqa: E731
        log(f"  {name:8s} {f(row['true'])} | " + " ".join(f(row[v]) for v in COUNTERD_VARIANTS)
            + f" | {f(row['ultralytics'])} "
            f"{f(row['ultralytics_bottom'])} | {f(row['supervision'])} {f(row['supervision_corners'])}")
    return summary


def run_live(args, out: Path) -> list[dict]:
    import compare_e2e
    seconds = 10 if args.quick else 30
    models = ("yolox_nano.onnx", "yolo11n_int8_320.onnx")
    variants = [(m, True) for m in models] + ([] if args.quick else [(m, False) for m in models])
    load = [c for c in args.cores if c != args.core][:1]     # the issue 11 setting: the other core busy
    log(f"\n## Live headroom: a 25 fps camera ({seconds} s each), the daemon pinned to core {args.core}"
        + (f", a second process loading core {load[0]}" if load else ""))
    results = []
    for model, gating in variants:
        path = out / f"live_{model}_{'gated' if gating else 'every'}.json"
        wait_all([child("compare_live.py", "--model", compare_e2e.SHARED / "models" / model, "--seconds", seconds,
                        "--core", args.core, "--out", path, *([] if gating else ["--no-gating"]),
                        *(["--load-core", load[0]] if load else []),
                        core=args.core)], timeout=seconds + 120)
        r = json.loads(path.read_text())
        results.append(r)
        log(f"{model:22s} gating {'on ' if gating else 'off'}: sent {r['frames_sent']}, analysed "
            f"{r['frames_analysed']} (detected {r['frames_detected']}), dropped {r['dropped']}; "
            f"CPU {r['cpu_ms_per_frame']:.1f} ms/frame = {r['core_demand']:.2f} of the core at 25 fps; "
            f"latency p50 {r['latency_ms_p50']} ms, max {r['latency_ms_max']} ms; waiting for the core "
            f"{100 * r['runqueue_wait_fraction']:.0f}% of the time")
    (out / "live.json").write_text(json.dumps(results, indent=1))
    return results


def run_fleet(args, out: Path) -> int | None:
    """bench/fleet.py: cameras per box, N `counterd run` processes on N RTSP cameras (yolox_nano,
    10 fps 640x480, every frame detected). Its RESULT line gives the largest N with every camera
    at full rate, no drops and coverage >= 99%; None when the GStreamer RTSP server is not installed."""
    cameras, seconds = ("1,2,3,4", 20) if args.quick else ("1,2,3,4,5,6", 60)
    log(f"\n## Cameras per box: bench/fleet.py --cameras {cameras} --seconds {seconds}")
    done = subprocess.run([sys.executable, str(HERE / "fleet.py"), "--cameras", cameras, "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=3600)
    (out / "fleet.txt").write_text(done.stdout + done.stderr)
    log(done.stdout.rstrip() or done.stderr.strip()[-500:])
    found = [line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("RESULT cameras_per_box=")]
    return int(found[0]) if found else None


def plot(hotloop: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    counts = sorted(hotloop, key=int)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    labels = {"counterd": "counterd (Tracker + LineCounter)",
              "ultralytics": "ultralytics 8.4 (BYTETracker + ObjectCounter)",
              "supervision": "supervision 0.30 (ByteTrack + LineZone)"}
    offsets = {"counterd": (4, -12), "ultralytics": (-34, 6), "supervision": (6, -12)}
    for name, style in (("counterd", "o-"), ("ultralytics", "s--"), ("supervision", "^--")):
        ms = [hotloop[c]["ms"][name] for c in counts]
        line, = ax.plot([int(c) for c in counts], ms, style, label=labels[name])
        for c, v in zip(counts, ms):
            ax.annotate(f"{v:.2f}", (int(c), v), textcoords="offset points", xytext=offsets[name], fontsize=7,
                        color=line.get_color())
    ax.set_xlim(7, 300)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([int(c) for c in counts], [str(c) for c in counts])
    ax.set_xlabel("objects per frame")
    ax.set_ylabel("tracker + line counter, ms/frame (one core)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    compare_env.reexec_in_env([str(Path(__file__).resolve()), *argv])
    for var in THREAD_VARS:
        os.environ[var] = "1"
    if args.list_lines:
        import compare_e2e
        truth = compare_e2e.true_counts()
        for set_name, lines in compare_e2e.LINE_SETS.items():
            for name, a, b in lines:
                print(f"{set_name:11s} {name:8s} {a} -> {b}: {truth[name]['in']} in, {truth[name]['out']} out")
        return 0
    allowed = sorted(os.sched_getaffinity(0))
    if args.core is None:
        args.core = allowed[-1]
    args.cores = [args.core] if args.serial else [args.core] + [c for c in allowed if c != args.core][:1]
    parts = set(args.only or ("hotloop", "e2e", "live", "fleet"))
    out = Path(args.out) if args.out else compare_env.env_dir().parent / "results" / time.strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"# compare.py{' --quick' if args.quick else ''}: {machine()}")
    log(f"versions: {versions()}")
    log(f"raw results: {out}")

    hot = run_hotloop(args, out) if "hotloop" in parts else None
    e2e = run_e2e(args, out) if "e2e" in parts else None
    live = run_live(args, out) if "live" in parts else None
    fleet = run_fleet(args, out) if "fleet" in parts else None

    if hot and not args.no_plot:
        plot(hot, PLOT, f"{machine().split(',')[0]}, one core: the same synthetic detections, 2 lines, "
                        f"median of {3 if args.quick else 7} rounds")
        log(f"\nplot: {PLOT}")

    log(f"\ntotal {time.perf_counter() - started:.0f} s")
    fields = []
    if hot:
        ms = hot[50]["ms"]
        fields.append(f"hotloop_speedup={min(ms['ultralytics'], ms['supervision']) / ms['counterd']:.1f}")
    if e2e:
        runs = e2e["runs"]
        best_anchor = max(runs["ultralytics"]["fps_cpu"], runs["supervision"]["fps_cpu"])
        acc = e2e["accuracy"]
        fields.append(f"e2e_fps_ratio={runs['counterd']['fps_cpu'] / best_anchor:.2f}")
        fields.append(f"acc_counterd={acc['counterd']['all']:.3f}")
        variant_fields = []
        for name in COUNTERD_VARIANTS[1:]:
            key = variant_key(name)
            variant_fields += [f"e2e_fps_ratio_{key}={runs[name]['fps_cpu'] / best_anchor:.2f}",
                              f"acc_counterd_{key}={acc[name]['all']:.3f}"]
        fields.append("acc_ultralytics={:.3f}".format(max(acc["ultralytics (centre, as shipped)"]["all"],
                                                          acc["ultralytics (bottom-centre)"]["all"])))
        fields.append("acc_supervision={:.3f}".format(max(acc["supervision (bottom-centre)"]["all"],
                                                          acc["supervision (corners, default)"]["all"])))
        fields += variant_fields
    if live:
        fields.append(f"live_max_core_demand={max(r['core_demand'] for r in live):.2f}")
        fields.append(f"live_dropped={sum(r['dropped'] for r in live)}")
    if "fleet" in parts:
        fields.append(f"cameras_per_box={fleet if fleet is not None else 'unmeasured'}")
    log("RESULT " + " ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
