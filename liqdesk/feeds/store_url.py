"""Store URLs: ``sqlite:///path`` (or a plain path) and ``postgresql://user@host/db``, parsed once, with the
password kept apart from anything liqdesk shows or saves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from liqdesk.errors import ConfigError

Kind = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL. ``url`` is as given (it may hold a password: use it to connect, never to save);
    ``safe`` the same without a password; ``location`` for people."""

    kind: Kind
    url: str
    safe: str
    location: str
    path: Path | None = None  # SQLite: the file
    had_password: bool = False


def _home_short(p: Path) -> str:
    home = str(Path.home())
    s = str(p)
    return "~" + s[len(home) :] if home not in ("", "/") and (s == home or s.startswith(home + "/")) else s


def parse_store_url(text: str | os.PathLike[str] | None) -> StoreUrl:
    """``sqlite:///absolute/path`` (a file URL: three slashes then the path), ``sqlite:relative/path``, a plain
    path, ``postgresql://[user[:password]@][host][:port]/dbname[?param=value…]`` (also ``postgres://``); None or
    "" is the default SQLite file. ConfigError for anything else."""
    from liqdesk.feeds.cache import default_path

    raw = "" if text is None else os.fspath(text).strip()
    if not raw:
        p = default_path()
        return StoreUrl(
            "sqlite", f"sqlite://{p.as_posix()}", f"sqlite://{p.as_posix()}", f"sqlite {_home_short(p)}", p
        )
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if scheme in ("postgresql", "postgres"):
        return _postgres_url(raw)
    if scheme == "sqlite":
        rest = raw[len("sqlite:") :]
        if rest.startswith("//"):
            parts = urlsplit(raw)
            if parts.netloc not in ("", "localhost"):
                raise ConfigError(f"--store {raw}: a SQLite store is a local file: sqlite:///absolute/path")
            rest = unquote(parts.path)
            if rest.startswith("/~"):
                rest = rest[1:]
        if not rest:
            return parse_store_url(None)
        p = Path(rest).expanduser()
    elif len(scheme) > 1 and "/" not in scheme and "\\" not in scheme:
        raise ConfigError(
            f"--store {raw}: unknown kind of store {scheme!r}; give sqlite:///path or postgresql://user@host/db"
        )
    else:
        p = Path(raw).expanduser()
    p = p.absolute()
    return StoreUrl(
        "sqlite", f"sqlite://{p.as_posix()}", f"sqlite://{p.as_posix()}", f"sqlite {_home_short(p)}", p
    )


def _postgres_url(raw: str) -> StoreUrl:
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ConfigError(f"--store {strip_password(raw)[0]}: bad port") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    had = parts.password is not None or any(k == "password" for k, _ in query)
    safe, _ = strip_password(raw)
    params = dict(query)
    user = unquote(parts.username or "") or params.get("user") or os.environ.get("PGUSER", "")
    host = unquote(parts.hostname or "") or params.get("host") or os.environ.get("PGHOST", "") or "localhost"
    if parts.port:
        host += f":{parts.port}"
    elif params.get("port"):
        host += f":{params['port']}"
    dbname = (
        unquote(parts.path.lstrip("/")) or params.get("dbname") or os.environ.get("PGDATABASE", "") or user
    )
    where = f"{user}@{host}" if user else host
    return StoreUrl("postgresql", raw, safe, f"postgresql {where}/{dbname}", None, had)


def strip_password(url: str) -> tuple[str, bool]:
    """``url`` without a password (in the user part or as ``?password=``), and whether it had one."""
    parts = urlsplit(url)
    had = False
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0]
            had = True
        netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "password"]
    had = had or len(kept) != len(query)
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept, safe="/:"), parts.fragment)), had
