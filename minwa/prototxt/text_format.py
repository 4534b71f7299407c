"""Protobuf text format (what Caffe's .prototxt files are written in) read into nested dicts.

minwa reads the format itself (no protobuf dependency). A field becomes a list wherever
caffe.proto declares it ``repeated`` (the table comes from minwa.schema.caffe_files, the
same declarations that validate configs), or wherever it occurs more than once.
"""
import functools
import re

from ..errors import ConfigError


@functools.cache
def _repeated():
    from ..schema.caffe_files import repeated_fields  # noqa: PLC0415

    return repeated_fields()


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![A-Za-z0-9_]))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>\[\]:,;])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


class _Token:
    __slots__ = ("col", "kind", "line", "text")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col


def _tokenize(text, filename):
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ConfigError(f"{filename}:{line}:{pos - line_start + 1}: unexpected character {text[pos]!r}")
        kind = match.lastgroup
        if kind != "space":
            tokens.append(_Token(kind, match.group(), line, pos - line_start + 1))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rfind("\n") + 1
        pos = match.end()
    tokens.append(_Token("end", "", line, pos - line_start + 1))
    return tokens


def _unquote(token, filename):
    body, out, i = token.text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1:]).group()
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if digits is None:
                raise ConfigError(f"{filename}:{token.line}:{token.col}: bad \\x escape in string")
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        else:
            raise ConfigError(f"{filename}:{token.line}:{token.col}: unknown escape '\\{nxt}' in string")
    return "".join(out)


def _number(text):
    body = text[:-1] if text[-1] in "fF" and not text.lower().startswith(("0x", "-0x", "+0x")) else text
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", body):
        return int(body, 16)
    if re.fullmatch(r"[-+]?\d+", body) and body == text:
        return int(body)
    return float(body)


def _identifier_value(text):
    lowered = text.lower()
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if lowered in ("inf", "infinity", "-inf", "-infinity", "nan", "-nan"):
        return float(lowered)
    return text  # an enum value such as MAX or TRAIN


class _Parser:
    def __init__(self, text, filename):
        self.filename = filename
        self.tokens = _tokenize(text, filename)
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos]

    def take(self):
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, token, message):
        return ConfigError(f"{self.filename}:{token.line}:{token.col}: {message}")

    def message(self, context, closing):
        out = {}
        while True:
            token = self.peek()
            if token.kind == "end":
                if closing is not None:
                    raise self.fail(token, f"missing {closing!r} to close {context or 'message'!r}")
                return out
            if closing is not None and token.text == closing and token.kind == "punct":
                self.take()
                return out
            self.field(out, context)
            if self.peek().text in (",", ";") and self.peek().kind == "punct":
                self.take()

    def field(self, out, context):
        token = self.take()
        if token.kind == "punct" and token.text == "[":
            raise self.fail(token, "protobuf extensions ([name]) are not supported in Caffe files")
        if token.kind != "ident" or token.text.startswith("-"):
            shown = repr(token.text) if token.kind != "end" else "the end of the file"
            raise self.fail(token, f"expected a field name, found {shown}")
        name = token.text
        colon = False
        if self.peek().text == ":" and self.peek().kind == "punct":
            self.take()
            colon = True
        nxt = self.peek()
        if nxt.kind == "punct" and nxt.text in "{<":
            self.take()
            values = [self.message(name, "}" if nxt.text == "{" else ">")]
        elif nxt.kind == "punct" and nxt.text == "[" and colon:
            self.take()
            values = self.list_values(name)
        elif colon:
            values = [self.scalar()]
        else:
            raise self.fail(nxt, f"expected ':' or '{{' after field {name!r}")
        self.store(out, context, name, values, token)

    def list_values(self, name):
        values = []
        if self.peek().text == "]" and self.peek().kind == "punct":
            self.take()
            return values
        while True:
            nxt = self.peek()
            if nxt.kind == "punct" and nxt.text in "{<":
                self.take()
                values.append(self.message(name, "}" if nxt.text == "{" else ">"))
            else:
                values.append(self.scalar())
            token = self.take()
            if token.text == "]" and token.kind == "punct":
                return values
            if token.text != "," or token.kind != "punct":
                raise self.fail(token, f"expected ',' or ']' in the list of {name!r}")

    def scalar(self):
        token = self.take()
        if token.kind == "string":
            parts = [_unquote(token, self.filename)]
            while self.peek().kind == "string":  # adjacent strings concatenate
                parts.append(_unquote(self.take(), self.filename))
            return "".join(parts)
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "ident":
            return _identifier_value(token.text)
        shown = repr(token.text) if token.kind != "end" else "the end of the file"
        raise self.fail(token, f"expected a value, found {shown}")

    def store(self, out, context, name, values, token):
        """Repeated fields (by Caffe's schema, or given more than once) become lists."""
        repeated = name == "dim" or name in _repeated().get(context, ())
        if name in out:
            existing = out[name]
            out[name] = (existing if isinstance(existing, list) else [existing]) + values
        elif repeated or len(values) != 1:
            out[name] = list(values)
        else:
            out[name] = values[0]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def parse_prototxt(text, filename="<prototxt>"):
    """Protobuf text format -> nested dicts; raises ConfigError naming file:line:column."""
    return _Parser(text, filename).message("", None)


def read_prototxt(path):
    """``parse_prototxt`` of a file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    return parse_prototxt(text, filename=path)
