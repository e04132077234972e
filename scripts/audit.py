"""Audit the installed packages for known vulnerabilities with pip-audit, and say plainly when
the audit could not be done instead of printing a clean bill it did not earn.

pip-audit asks a vulnerability service about every installed distribution (the local
editable ``stargan`` is skipped). Two things can leave packages unaudited without failing
pip-audit itself: no network to the service, and a package index that does not serve
per-version JSON (a mirror) or a local version such as ``torch 2.13.0+cpu``, which PyPI does
not list. Local versions are audited again as their public release (``2.13.0``).

Exit status: 1 when a vulnerability is found; 0 when the audit is clean *or could not be
done* (the reason is printed; CI must not fail for lack of network). Set
``STARGAN_AUDIT_STRICT=1`` to fail when any package could not be audited.

Usage: python scripts/audit.py [extra pip-audit flags, e.g. --vulnerability-service osv]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

NETWORK_ERRORS = ("ConnectionError", "NameResolutionError", "Max retries", "timed out")


def run_pip_audit(args: list[str]) -> tuple[dict[str, Any] | None, str]:
    """(the JSON report or None, pip-audit's stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format",
               "json", "--output", str(report), *args]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        text = report.read_text() if report.exists() else ""
    return (json.loads(text) if text.strip() else None), proc.stderr


def summarise(report: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(audited names, skipped 'name: reason', vulnerable 'name version: ids -> fixes')."""
    audited, skipped, vulnerable = [], [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        audited.append(dep["name"])
        for v in dep.get("vulns", []):
            fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            ids = " / ".join([v["id"], *v.get("aliases", [])])
            vulnerable.append(f"{dep['name']} {dep['version']}: {ids} (fixed in {fixes})")
    return audited, skipped, vulnerable


def _public_versions(skipped: list[str]) -> list[str]:
    """'torch==2.13.0' for every skipped package whose installed version is local (+cpu)."""
    pins = []
    for line in skipped:
        tail = line.rpartition(": ")[2]  # the reason ends "...: torch (2.13.0+cpu)"
        name, _, version = tail.partition(" (")
        version = version.rstrip(")")
        if "+" in version:
            pins.append(f"{name}=={version.split('+')[0]}")
    return pins


def main(args: list[str]) -> int:
    strict = os.environ.get("STARGAN_AUDIT_STRICT") == "1"
    report, err = run_pip_audit(["--skip-editable", *args])
    if report is None:
        if any(marker in err for marker in NETWORK_ERRORS):
            reason = next(line for line in reversed(err.splitlines()) if line.strip())
            print(f"pip-audit: NOT AUDITED, the vulnerability service is unreachable: {reason}")
            return 1 if strict else 0
        print(f"pip-audit failed:\n{err}")
        return 1
    audited, skipped, vulnerable = summarise(report)
    pins = _public_versions(skipped)
    if pins:  # local builds (torch+cpu): audit the public release they are built from
        with tempfile.TemporaryDirectory() as tmp:
            req = Path(tmp) / "local-versions.txt"
            req.write_text("\n".join(pins) + "\n")
            again, _ = run_pip_audit(["--no-deps", "--disable-pip", "-r", str(req), *args])
        if again is not None:
            a2, s2, v2 = summarise(again)
            names = {p.split("==")[0].lower() for p in pins}
            skipped = [s for s in skipped if s.split(":")[0].lower() not in names] + s2
            audited, vulnerable = audited + a2, vulnerable + v2
    total = len(audited) + len(skipped)
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} known vulnerabilities:")
        print("\n".join(f"  {v}" for v in vulnerable))
        return 1
    if not audited:
        print(f"pip-audit: NOT AUDITED, none of the {total} packages could be checked (the "
              f"index serves no per-version data, or no network). First reason: {skipped[0]}"
              if skipped else "pip-audit: no packages found to audit")  # fmt: skip
        return 1 if strict else 0
    print(f"pip-audit: no known vulnerabilities in {len(audited)} of {total} packages")
    if skipped:
        print(f"  not audited ({len(skipped)}): " + "; ".join(skipped[:10]))
        return 1 if strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
