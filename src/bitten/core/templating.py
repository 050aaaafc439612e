"""The one Jinja2 environment that renders cluster files, for `bitten render` and for the roles alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import hostlist
import jinja2

from bitten.site.cache import user_cache

#: placeholder written instead of a secret's value (render output is for review, never for secrets)
SECRET_PLACEHOLDER = "<secret:{name}>"  # noqa: S105 - a placeholder, not a secret


def templates_dir() -> Path:
    """templates/ of the checkout, or the copy inside an installed wheel; BITTEN_TEMPLATES overrides."""
    override = os.environ.get("BITTEN_TEMPLATES")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[2] / "templates", here.parent / "_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("bitten's templates/ directory was not found; set BITTEN_TEMPLATES")


def compress_hosts(hosts: Iterable[str]) -> str:
    """Host names in Slurm's hostlist notation: gpu01..gpu16 -> gpu[01-16]."""
    return _collected(tuple(sorted(set(hosts))))


@lru_cache(maxsize=512)
def _collected(hosts: tuple[str, ...]) -> str:
    # templates and the render's manifest ask for the same few host lists again and again (every Slurm host, every
    # compute node): 50 ms each at 10,000 nodes, ~800 times in a render
    return str(hostlist.collect_hostlist(list(hosts)))


def expand_hosts(pattern: str) -> list[str]:
    """Slurm's hostlist notation expanded: /dev/nvidia[0-1] -> [/dev/nvidia0, /dev/nvidia1]."""
    return [str(name) for name in hostlist.expand_hostlist(pattern)]


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


#: generic filters; capabilities add their own (CAPABILITY.filters) through use_filters()
FILTERS: dict[str, Callable[..., Any]] = {
    "hostlist": compress_hosts,
    "expand_hostlist": expand_hosts,
    "yes_no": yes_no,
}


_extra: dict[str, Callable[..., Any]] = {}


def use_filters(filters: Mapping[str, Callable[..., Any]]) -> None:
    """Make capability filters available to every template (bitten.capabilities calls this once)."""
    clash = {name for name in filters if name in FILTERS or _extra.get(name, filters[name]) is not filters[name]}
    if clash:
        raise ValueError(f"template filters defined twice: {', '.join(sorted(clash))}")
    _extra.update(filters)
    environment.cache_clear()


def bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (Jinja2's own cache, keyed by each template's source), in the user's
    cache directory: compiling is most of a small site's render. None (compile every time) under BITTEN_NO_CACHE
    or where that directory is not the user's own and private, since what it holds is run as code."""
    root = user_cache("jinja")
    if root is None:
        return None
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = root.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return jinja2.FileSystemBytecodeCache(str(root))


@cache
def environment(root: str | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root or str(templates_dir())),
        bytecode_cache=bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - configuration files, not HTML
    )
    env.filters.update(FILTERS)
    env.filters.update(_extra)
    return env


def render_template(name: str, context: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> str:
    """Render templates/<name>. Secrets come from ``secrets``; without it they render as placeholders."""

    def secret(key: str) -> str:
        if secrets is None:
            return SECRET_PLACEHOLDER.format(name=key)
        if key not in secrets:
            raise KeyError(f"template {name} needs secret {key!r}, which was not given")
        return secrets[key]

    return environment().get_template(name).render({**context, "secret": secret})
