"""Whatever text reaches a trace (an event id, a type, a path, an error code), the Mermaid the
lab draws has one statement per message, on its own line, with no control or format character
and none of Mermaid's own syntax: property-based, with hypothesis. And a notebook shows the
diagram through a display object (text/vnd.mermaid), not a Markdown fence a label could close.
"""
from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_server.trace.diagram import MERMAID_MIME, TraceDiagram, _text, mermaid

# One drawn line: the header, a participant, or one message "A->>B: label" whose label holds
# none of Mermaid's syntax.
HEADER = "sequenceDiagram"
PARTICIPANT = re.compile(r"    participant (C|S|St) as [A-Za-z ()/]+")
MESSAGE = re.compile(r"    (C|S|St)(->>|-->>|-x|--x)(C|S|St): [^;#%<>\"`{}\\]*")
BAD_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")

ATTACKS = [
    "evt_1\rNote over C,St: <a href='https://evil.example'>Your refund is ready: claim it here</a>",
    "evt_1\n```\n[claim it](https://evil.example)\n```mermaid",
    "evt\u00a0nbsp\u2028line\u2029para\u200bzero\u202eRTL\u0085nel\x0bvt",
    "evt %%{init: {'securityLevel': 'loose'}}%% --> end\nend",
    "style x:y#35;z; classDef a:#f00;",
    "\ufb02\u00b0lt\u00b6\u00df script",
]


def webhook(event_id: str, event_type: str = "payment_intent.succeeded",
            outcome: str = "fulfilled") -> dict:
    return {"kind": "webhook", "from": "stripe", "to": "server", "step": 6, "t_ms": 12.0,
            "status": "200", "failed": False, "event_id": event_id, "event_type": event_type,
            "signature": "verified", "outcome": outcome}


def request(path: str, error: str) -> list[dict]:
    return [{"kind": "request", "from": "client", "to": "server", "step": 6, "t_ms": 1.0,
             "method": "POST", "path": path, "status": None, "failed": False},
            {"kind": "stripe", "from": "server", "to": "stripe", "step": 6, "t_ms": 2.0,
             "method": "GET", "path": path, "status": "402", "failed": True, "error": error,
             "duration_ms": 3.0}]


def assert_well_formed(text: str, messages: int, answers: int = 0) -> None:
    lines = text.split("\n")
    assert text.splitlines() == lines  # no other line break Python (or JavaScript) knows
    assert len(lines) == 1 + 3 + messages + answers, lines
    assert lines[0] == HEADER
    assert all(PARTICIPANT.fullmatch(line) for line in lines[1:4]), lines[1:4]
    for line in lines[4:]:
        assert MESSAGE.fullmatch(line), repr(line)
        assert not any(unicodedata.category(c) in BAD_CATEGORIES for c in line), repr(line)
        assert not any(unicodedata.category(c) == "Zs" and c != " " for c in line), repr(line)


@given(st.text(), st.text(), st.text())
@settings(max_examples=300, deadline=None)
def test_any_label_stays_one_statement_on_one_line(event_id, event_type, outcome):
    assert_well_formed(mermaid([webhook(event_id, event_type, outcome)]), messages=1)


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    list("\r\n\u2028\u2029\u0085\u00a0\u202f\u200b\u202e;#%<>\"`{}:\\\ufb02\u00b0\u00b6\u00df"))),
       st.text())
@settings(max_examples=300, deadline=None)
def test_any_path_and_error_stay_one_statement_each(path, error):
    assert_well_formed(mermaid(request(path, error)), messages=2, answers=1)


def test_the_known_attacks_are_drawn_as_plain_text():
    for attack in ATTACKS:
        text = mermaid([webhook(attack, attack, attack)])
        assert_well_formed(text, messages=1)
        assert "Note over" not in text.split("\n", 4)[-1].split(": ", 1)[0]
    assert _text("evt#1; 50% <b>") == "evt\uff031\uff1b 50\uff05 \u2039b\u203a"
    assert _text("a\u00a0b\rc\u200bd") == "a b cd"
    assert _text("reconcile: ok") == "reconcile: ok"
    assert _text("\ufb02\u00b0lt\u00b6\u00df") == "fl\u00b0lt\u00b6 \u00df"


def test_a_notebook_trace_is_a_mermaid_display_object_not_a_markdown_fence():
    body = {"data": [webhook("evt_1")], "mermaid": mermaid([webhook("evt_1")])}
    shown = TraceDiagram("order_x\r\n```\n[claim](https://evil.example)", body,
                         "http://127.0.0.1:4242/dashboard#follow=order_x")
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {MERMAID_MIME, "text/plain"}  # no text/markdown, no text/html
    lines = bundle[MERMAID_MIME].split("\n")
    assert lines[0] == HEADER and lines[1].startswith("    title Order order_x")
    assert len(lines) == 2 + len(body["mermaid"].split("\n")) - 1
    assert not any(unicodedata.category(c) in BAD_CATEGORIES for c in lines[1])
    assert "```" not in bundle[MERMAID_MIME]
