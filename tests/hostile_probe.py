"""Run `stargan` commands on crafted files inside one process under an address-space limit, as
`ulimit -v` would, and report how each ended: the exit code, the seconds it took, what it
printed, or the traceback / hang that must never happen.

    python tests/hostile_probe.py LIMIT_BYTES SECONDS < cases.json > results.json

cases.json is a list of {"name": ..., "argv": [...]}; the output has one {"name", "outcome"
("exit", "traceback", "hang"), "code", "seconds", "stderr", "stdout"} per case, the seconds of
the one-time imports and the process's peak RSS. One process runs every case: each would
otherwise pay the start-up of torch again.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import resource
import signal
import sys
import time
import traceback

IMPORTS = (
    "stargan.cli",
    "stargan.inference",
    "stargan.training.trainer",
    "stargan.evaluation.cli",
    "stargan.official",
    "stargan.export",
    "stargan.data.check",
)


class Hang(BaseException):
    """The alarm went off: the command did not finish in time."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def run_case(argv: list[str], seconds: int) -> dict[str, object]:
    from stargan.cli import main

    err, out = io.StringIO(), io.StringIO()
    code, outcome, detail = None, "exit", ""
    start = time.perf_counter()
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    except Hang:
        outcome = "hang"
    except BaseException:
        outcome, detail = "traceback", traceback.format_exc()
    finally:
        signal.alarm(0)
    return {
        "outcome": outcome,
        "code": code,
        "seconds": round(time.perf_counter() - start, 3),
        "stderr": err.getvalue() + detail,
        "stdout": out.getvalue()[-4000:],
    }


def main() -> None:
    limit, seconds = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.load(sys.stdin)
    # The modules every command imports on first use (torch and the library: about 2 s here),
    # timed apart so that each case's seconds are the time it takes to refuse its file.
    start = time.perf_counter()
    for module in IMPORTS:
        importlib.import_module(module)
    import_seconds = round(time.perf_counter() - start, 3)
    # Each command once first: what it imports on first use is not part of refusing a file.
    first: dict[tuple[str, ...], list[str]] = {}
    for c in cases:
        first.setdefault(tuple(c["argv"][:2]), c["argv"])
    for argv in first.values():
        run_case(argv, seconds)
    results = [{"name": c["name"], **run_case(c["argv"], seconds)} for c in cases]
    # VmHWM, not ru_maxrss: ru_maxrss survives fork + exec and would report the parent's size.
    with open("/proc/self/status") as f:
        peak_mib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    report = {"results": results, "import_seconds": import_seconds}
    json.dump(report | {"peak_rss_mib": round(peak_mib, 1)}, sys.stdout)


if __name__ == "__main__":
    main()
