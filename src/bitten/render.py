"""Render every generated file of a site, per host, into a directory tree that reviews read as a diff."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bitten.files import FILES, FileSpec, spec_for
from bitten.site.model import Site
from bitten.templating import render_template

#: written next to the host directories: host, path, mode, owner and digest of every file
MANIFEST = "manifest.tsv"


def context(site: Site, host: str | None, item: str | None = None) -> dict[str, object]:
    return {"site": site, "host": host, "node": site.nodes[host] if host else None, "item": item}


def render_file(site: Site, path: str, host: str, secrets: Mapping[str, str] | None = None) -> str:
    """The content ``host`` gets at ``path``: what the roles deploy (with secrets) and render shows."""
    spec, item = spec_for(path)
    if host not in spec.hosts(site):
        raise KeyError(f"host {host} does not get {path}")
    if spec.items is not None and item not in spec.items(site):
        raise KeyError(f"host {host} gets no {path}: {item} is not one of its items")
    return _content(site, spec, host, item, secrets)


@dataclass
class RenderResult:
    files: int
    hosts: int
    unique: int


def render_tree(site: Site, out: Path, progress: Callable[[int], None] | None = None) -> RenderResult:
    """Write ``out/<host>/<path>`` for every host and file, and ``out/manifest.tsv``. Secrets appear as placeholders.

    Files with the same content on every host are rendered once and hard-linked, so a 10,000-node site
    costs one render per cluster-wide file. ``out`` is replaced as a whole, so no stale file survives.
    """
    tmp = out.with_name(out.name + ".rendering")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    written = unique = 0
    hosts: set[str] = set()
    manifest: list[str] = []
    for spec in FILES:
        targets = spec.hosts(site)
        for path, item in spec.paths(site):
            shared: Path | None = None
            digest = ""
            for host in targets:
                dest = tmp / host / path.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if shared is not None:
                    os.link(shared, dest)
                else:
                    content = _content(site, spec, host, item).encode()
                    dest.write_bytes(content)
                    digest = hashlib.sha256(content).hexdigest()
                    unique += 1
                    if not spec.per_host:
                        shared = dest
                manifest.append(f"{host}\t{path}\t{spec.mode}\t{spec.owner}:{spec.group}\t{digest}\n")
                written += 1
                hosts.add(host)
        if progress:
            progress(len(targets))
    # what each file's mode and owner will be on the host: reviews see a permission change as a diff too
    (tmp / MANIFEST).write_text("host\tpath\tmode\towner\tsha256\n" + "".join(sorted(manifest)))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return RenderResult(files=written, hosts=len(hosts), unique=unique)


def _content(site: Site, spec: FileSpec, host: str, item: str | None = None,
             secrets: Mapping[str, str] | None = None) -> str:
    who = host if spec.per_host else None
    if spec.render is not None:
        return spec.render(site, who, item)
    assert spec.template is not None, f"{spec.path}: a FileSpec needs a template or a render function"
    return render_template(spec.template, context(site, who, item), secrets)
