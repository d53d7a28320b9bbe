"""Runs parliament (with its community auditors) and cloudsplaining on the
operator's rendered AWS policies and fails on any finding that is not in
allowed-findings.yaml, or on an allowed finding that no longer occurs (so the
list never outlives its reasons).

Usage: lint.py <allowed-findings.yaml> <policy.json>...
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from cloudsplaining.command.scan_policy_file import scan_policy

PARLIAMENT = Path(sys.executable).with_name("parliament")


def parliament_findings(path: Path) -> set[str]:
    # parliament reads stdin when it is not a terminal: give it nothing.
    done = subprocess.run(
        [str(PARLIAMENT), "--files", str(path), "--json", "--include-community-auditors"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1) or done.stderr.strip():
        raise SystemExit(f"parliament failed on {path}: {done.stderr}")
    found = set()
    for line in done.stdout.splitlines():
        if line.strip():
            finding = json.loads(line)
            actions = finding.get("location", {}).get("actions") or [""]
            for action in actions:
                found.add(f"parliament {finding['issue']} {action}".strip())
    return found


def cloudsplaining_findings(policy: dict) -> set[str]:
    found = set()
    # Both modes: the default one flags actions without resource
    # constraints; the strict one flags risky actions whatever their scope.
    for strict in (False, True):
        results = scan_policy(
            policy, flag_conditional_statements=strict, flag_resource_arn_statements=strict
        )
        for category, result in (results or {}).items():
            if not isinstance(result, dict):
                continue  # ServicesAffected: a summary, not a finding
            for item in result.get("findings", []):
                if isinstance(item, dict):
                    found.add(f"cloudsplaining {category} {item.get('type')}")
                else:
                    found.add(f"cloudsplaining {category} {item}")
    return found


def main() -> int:
    allowed_file, *policies = sys.argv[1:]
    allowed = {entry["finding"]: entry["reason"] for entry in yaml.safe_load(Path(allowed_file).read_text())}
    missing_reason = [finding for finding, reason in allowed.items() if not str(reason or "").strip()]
    found: set[str] = set()
    for name in policies:
        path = Path(name)
        found |= parliament_findings(path)
        found |= cloudsplaining_findings(json.loads(path.read_text()))
    unexpected = sorted(found - set(allowed))
    stale = sorted(set(allowed) - found)
    print(f"policy lint: {len(found)} findings on {len(policies)} policies, all in the allow-list: {not unexpected}")
    for finding in sorted(found & set(allowed)):
        print(f"  allowed: {finding}")
    for finding in unexpected:
        print(f"FAIL finding not in {allowed_file}: {finding}", file=sys.stderr)
    for finding in stale:
        print(f"FAIL allowed finding no longer reported (remove it): {finding}", file=sys.stderr)
    for finding in missing_reason:
        print(f"FAIL allowed finding without a reason: {finding}", file=sys.stderr)
    return 1 if unexpected or stale or missing_reason else 0


if __name__ == "__main__":
    sys.exit(main())
