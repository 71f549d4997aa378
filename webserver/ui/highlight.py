"""Python source as HTML with its tokens marked for colouring (the DAG's Code tab).

Built on the standard tokenizer, so it needs nothing the webserver does not already
have; text it cannot tokenize (a file saved half-written) is shown plain.
"""

from __future__ import annotations

import io
import keyword
import token
import tokenize

from markupsafe import Markup, escape

_BUILTIN_CONSTANTS = {"True", "False", "None"}


def _css_class(tok: tokenize.TokenInfo, previous: str) -> str | None:
    if tok.type == token.COMMENT:
        return "cm"
    if tok.type == token.STRING or tok.type in _FSTRING_TYPES:
        return "st"
    if tok.type == token.NUMBER:
        return "nu"
    if tok.type == token.NAME:
        if tok.string in _BUILTIN_CONSTANTS:
            return "co"
        if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string):
            return "kw"
        if previous in ("def", "class"):
            return "fn"
    if tok.type == token.OP and tok.string == "@":
        return "de"
    return None


_FSTRING_TYPES = {
    getattr(token, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(token, name)
}


def python_html(source: str) -> Markup:
    """The source, HTML-escaped, with ``<span class=...>`` around its tokens."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out: list[str] = []
    position = 0
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            css = _css_class(tok, previous)
            if tok.type in (token.NL, token.NEWLINE, token.INDENT, token.DEDENT, token.ENDMARKER):
                continue
            if tok.type == token.NAME:
                previous = tok.string
            if css is None:
                continue
            start = offsets[tok.start[0] - 1] + tok.start[1]
            end = offsets[tok.end[0] - 1] + tok.end[1]
            out.append(str(escape(source[position:start])))
            out.append(f'<span class="{css}">{escape(source[start:end])}</span>')
            position = end
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return Markup(escape(source))
    out.append(str(escape(source[position:])))
    return Markup("".join(out))
