"""The pages a person sees: lookup form, values of an identifier, not found; zh and en."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from urllib.parse import quote

from proto import handle_pb2
from resolver.http import formats

HandleValue = handle_pb2.HandleValue
LINK_SCHEMES = ("http://", "https://")
MAX_SHOWN_BINARY_BYTES = 48

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Identifier resolution",
        "lookup": "Look up an identifier",
        "placeholder": "e.g. 88.118.8/JXDY2106023",
        "go": "Resolve",
        "index": "Index",
        "type": "Type",
        "data": "Data",
        "ttl": "TTL",
        "changed": "Last change",
        "seconds": "s",
        "binary": "binary data, {n} bytes",
        "no_values": "This identifier has no public values.",
        "not_found": "The identifier {id} does not exist on this node.",
        "error": "The request could not be answered",
        "json": "JSON",
    },
    "zh": {
        "title": "标识解析",
        "lookup": "查询标识",
        "placeholder": "例如 88.118.8/JXDY2106023",
        "go": "解析",
        "index": "索引",
        "type": "类型",
        "data": "数据",
        "ttl": "有效期",
        "changed": "最后修改",
        "seconds": "秒",
        "binary": "二进制数据，{n} 字节",
        "no_values": "该标识没有公开的值。",
        "not_found": "本节点上不存在标识 {id}。",
        "error": "无法处理该请求",
        "json": "JSON",
    },
}

_STYLE = (
    "body{font:16px/1.45 system-ui,sans-serif;margin:0;padding:1rem;max-width:48rem;"
    "margin-inline:auto;color:#1b1b1b;background:#fff}"
    "h1{font-size:1.25rem;margin:.2rem 0 1rem;word-break:break-all}"
    "form{display:flex;gap:.5rem;margin:1rem 0}"
    "input{flex:1;min-width:0;font-size:1rem;padding:.55rem;border:1px solid #888;"
    "border-radius:6px}"
    "button{font-size:1rem;padding:.55rem 1rem;border:0;border-radius:6px;background:#0b5cad;"
    "color:#fff}"
    "dl{margin:0 0 1rem;padding:.75rem;border:1px solid #ddd;border-radius:8px}"
    "dt{font-size:.8rem;color:#555}dd{margin:0 0 .4rem;word-break:break-all}"
    ".type{font-weight:600}.msg{padding:.75rem;background:#fff4e5;border-radius:8px}"
    "a{color:#0b5cad}small{color:#555}"
)


def _page(lang: str, title: str, body: str) -> bytes:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def _form(lang: str, value: str = "") -> str:
    labels = LABELS[lang]
    return (
        f'<form action="/" method="get" role="search"><input name="id" id="id" '
        f'value="{html.escape(value)}" placeholder="{labels["placeholder"]}" '
        f'aria-label="{labels["lookup"]}" autocapitalize="off" autocorrect="off" required>'
        f'<button type="submit">{labels["go"]}</button></form>'
    )


def lookup(lang: str) -> bytes:
    """`/`: the lookup form."""
    labels = LABELS[lang]
    return _page(lang, labels["title"], f"<h1>{labels['lookup']}</h1>{_form(lang)}")


def values(lang: str, identifier: str, shown: Sequence[HandleValue]) -> bytes:
    """The public values of an identifier, one card per value."""
    labels = LABELS[lang]
    cards = "".join(_card(labels, value) for value in shown) or (
        f'<p class="msg">{labels["no_values"]}</p>'
    )
    json_link = f"/api/handles/{quote(identifier, safe='/')}"
    body = (
        f'<h1 id="identifier">{html.escape(identifier)}</h1><main id="values">{cards}</main>'
        f'<p><small><a href="{json_link}">{labels["json"]}</a></small></p>{_form(lang)}'
    )
    return _page(lang, identifier, body)


def _card(labels: dict[str, str], value: HandleValue) -> str:
    return (
        f'<dl class="value" data-index="{value.index}">'
        f"<dt>{labels['type']} · {labels['index']} {value.index}</dt>"
        f'<dd class="type">{html.escape(value.type)}</dd>'
        f'<dt>{labels["data"]}</dt><dd class="data">{_data(labels, value)}</dd>'
        f"<dt>{labels['ttl']} · {labels['changed']}</dt>"
        f"<dd>{value.ttl if value.HasField('ttl') else 86400} {labels['seconds']} · "
        f"{formats.iso_time(value.timestamp)}</dd></dl>"
    )


def _data(labels: dict[str, str], value: HandleValue) -> str:
    shown = formats.data_json(value.type, value.data)
    if shown["format"] == "string":
        text = str(shown["value"])
        escaped = html.escape(text)
        if text.startswith(LINK_SCHEMES) and not any(c.isspace() for c in text):
            return f'<a href="{escaped}" rel="nofollow noopener">{escaped}</a>'
        return escaped
    if shown["format"] == "base64":
        head = base64.b64encode(value.data[:MAX_SHOWN_BINARY_BYTES]).decode()
        more = "…" if len(value.data) > MAX_SHOWN_BINARY_BYTES else ""
        size = labels["binary"].format(n=len(value.data))
        return f"<small>{size}</small><br><code>{head}{more}</code>"
    return f"<code>{html.escape(str(shown['value']))}</code>"


def not_found(lang: str, identifier: str) -> bytes:
    """An identifier that does not exist: say so, offer the form again."""
    labels = LABELS[lang]
    message = labels["not_found"].format(id=f"<b>{html.escape(identifier)}</b>")
    return _page(lang, labels["title"], f'<h1>{labels["title"]}</h1><p class="msg" id="not-found">'
                 f"{message}</p>{_form(lang, identifier)}")  # fmt: skip


def error(lang: str, message: str, identifier: str = "") -> bytes:
    """A request that cannot be answered, with the reason and the form."""
    labels = LABELS[lang]
    return _page(lang, labels["error"], f'<h1>{labels["error"]}</h1><p class="msg" id="error">'
                 f"{html.escape(message)}</p>{_form(lang, identifier)}")  # fmt: skip


def language(accept_language: bytes) -> str:
    """`zh` when the client prefers Chinese to English, else `en`."""
    best, best_q = "en", -1.0
    for part in accept_language.split(b",")[:16]:
        tag, _, params = part.strip().partition(b";")
        q = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        tag = tag.lower()
        lang = "zh" if tag.startswith(b"zh") else "en" if tag.startswith(b"en") else ""
        if lang and q > best_q:
            best, best_q = lang, q
    return best
