"""Links in the book's sources, rewritten for the book: a link to another page of the book stays
(MyST resolves it); a link to a repository file that is not in the book becomes a link to the
repository's web page (book/launch.ini `repository`), or, without one, plain text naming the file.
So no page of the book points at a file that is not there."""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from theme.launch import repository_file_url

# [text](target): the text may hold `code` and one level of brackets; no reference-style links
# are used in the sources.
LINK = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
EXTERNAL = ("http://", "https://", "mailto:", "#")


def rewrite_links(text: str, source: str, in_book: set[str], root: Path,
                  repository: str, branch: str) -> str:
    """`text` (Markdown of the repository file `source`, e.g. docs/learner.md) with every link
    to a file outside `in_book` (repository paths) rewritten; code blocks are left alone."""
    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(
            lambda m: _rewrite(m, source, in_book, root, repository, branch), line))
    return "".join(out)


def _rewrite(match: re.Match, source: str, in_book: set[str], root: Path,
             repository: str, branch: str) -> str:
    text, target = match.group(1), match.group(2)
    if target.startswith(EXTERNAL):
        return match.group(0)
    path, _, fragment = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if resolved in in_book:
        return match.group(0)
    url = repository_file_url(repository, branch, resolved, (root / resolved).is_dir())
    if url:
        return f"[{text}]({url}{'#' + fragment if fragment else ''})"
    shown = resolved + ("/" if (root / resolved).is_dir() else "")
    if text in (resolved, shown):
        return f"`{shown}`"
    name = posixpath.basename(resolved)
    named = (resolved, name, posixpath.splitext(name)[0])
    return text if any(n and n in text for n in named) else f"{text} (`{shown}`)"

