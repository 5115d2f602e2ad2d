"""What the book keeps of a stored output's HTML (book/theme/sanitise.py): text and layout, never
a script, an event handler, a frame or a javascript: link."""
from __future__ import annotations

import pytest

from book.theme.sanitise import sanitise_html

pytestmark = pytest.mark.fast


def test_scripts_handlers_frames_and_script_links_are_dropped():
    html = ('<div onclick="steal()" style="padding:1em"><script>alert(1)</script><b>kept</b>'
            '<iframe src="https://evil.example"></iframe><a href="javascript:alert(1)">x</a>'
            '<img src="https://tracker.example/p.png" onerror="x()">'
            '<svg onload="x()"><text>s</text></svg></div>')
    clean = sanitise_html(html)
    assert clean == '<div style="padding:1em"><b>kept</b><a>x</a><img></div>'


def test_text_is_escaped_again_and_safe_links_stay():
    clean = sanitise_html('<a href="http://127.0.0.1:1/dashboard" target="_blank">'
                          "&lt;b&gt; 1 &amp; 2</a>")
    assert clean == ('<a href="http://127.0.0.1:1/dashboard" target="_blank" rel="noopener">'
                     '&lt;b&gt; 1 &amp; 2</a>')


def test_a_heading_in_an_output_does_not_join_the_page_outline():
    assert sanitise_html("<h1>Title</h1>") == '<p class="output-heading"><strong>Title</strong></p>'
