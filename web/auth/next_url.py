"""Where a successful login may send the user: only a path on this site.

`?next=` is attacker-controlled (a link in a phishing mail), and browsers are lenient: `//evil`,
`/\\evil`, `/\\t/evil` (tabs and newlines are stripped) and `https:evil` all leave the site. So the
rule is a whitelist, not a blacklist: a path that starts with exactly one "/" followed by something
other than "/" or "\\", with no scheme, no host, no backslash, no control character or whitespace, no
"." or ".." segment and no empty segment — checked on the text as given and once percent-decoded
(`/%09/evil`, `/%5Cevil`). Anything else falls back to the home page.
"""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

MAX_NEXT_CHARS = 2048


def _plain_path_ok(target: str) -> bool:
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\\\u200b\u2028\u2029\ufeff"
           for ch in target):
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return False
    segments = parts.path.split("/")[1:]
    if len(segments) > 1 and "" in segments[:-1]:
        return False  # "//" inside the path: some servers and browsers collapse it into a host
    return not any(seg in (".", "..") for seg in segments)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a same-site relative path (see the module doc), else None."""
    if not target or len(target) > MAX_NEXT_CHARS:
        return None
    if not _plain_path_ok(target) or not _plain_path_ok(unquote(target)):
        return None
    return target
