"""axe-core (pinned in package.json, installed by `make node_modules/.installed`) run inside a
page in Chromium. The pages' CSP forbids injected scripts, so the test's browser context
bypasses CSP (`bypass_csp=True`, tests only); the server still sends the same strict policy."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
REPORT = ROOT / "test-artifacts" / "axe-results.json"

# axe's tags for what the tests hold the pages to: WCAG 2.0-2.2 A and AA, plus best practices.
RUN_OPTIONS = {"runOnly": {"type": "tag", "values": [
    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
    "resultTypes": ["violations"]}


def axe_version() -> str:
    return json.loads((AXE_JS.parent / "package.json").read_text())["version"]


def run_axe(page) -> list[dict]:
    """Every violation axe finds in the page as it is now: rule id, impact, how many nodes and
    (the first few of) which."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    return page.evaluate("""async (options) => {
        const result = await axe.run(document, options);
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""", RUN_OPTIONS)


def record(name: str, violations: list[dict]) -> None:
    """Keep each page's results in test-artifacts/axe-results.json for people to read."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        report = {}
    report["axe-core"] = axe_version()
    report[name] = violations
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
