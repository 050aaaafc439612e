"""Generated files: what a capability contributes (a FileSpec per file), and rendering them per host.

Every file a role deploys from the site model is a FileSpec in its capability's ``CAPABILITY.files``; the
composition (bitten.capabilities) collects them, so `bitten render` and the roles (lookup ``bitten_file``) produce
the same bytes. A file's content comes from a Jinja template under templates/ or from a Python function.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitten.core.templating import SECRET_PLACEHOLDER, render_template
from bitten.site.model import Site

#: ``secret(name)``: the value of a secret (from vault), or its placeholder when rendering for review
SecretFn = Callable[[str], str]
#: a Python renderer: (site, host or None for a cluster-wide file, secret) -> content
Renderer = Callable[[Site, "str | None", SecretFn], str]

#: written next to the host directories: host, path, mode, owner and digest of every file
MANIFEST = "manifest.tsv"
#: in the path of a spec with ``items``: one file per item (the template sees ``item``)
ITEM = "{item}"


@dataclass(frozen=True)
class FileSpec:
    #: absolute path on the host
    path: str
    #: which hosts get the file
    hosts: Callable[[Site], list[str]]
    #: template under templates/ (or give ``render``)
    template: str | None = None
    #: a Python function that writes the content (a serialised model, say) instead of a template
    render: Renderer | None = None
    #: False when the content is the same on every host that gets it (rendered once)
    per_host: bool = False
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    description: str = ""
    #: one file per item on each host that gets the spec (a boot script per provisioned node, say): the path
    #: contains {item} and the template sees ``item``
    items: Callable[[Site], list[str]] | None = None

    def __post_init__(self) -> None:
        if (self.template is None) == (self.render is None):
            raise ValueError(f"{self.path}: give either a template or a render function")
        if (self.items is not None) != (ITEM in self.path):
            raise ValueError(f"{self.path}: a file per item has {ITEM} in its path, and only such a file")
        if self.items is not None and self.template is None:
            raise ValueError(f"{self.path}: a file per item is rendered from a template")

    def paths(self, site: Site) -> Iterator[tuple[str, str | None]]:
        """(path, item) of every file of this spec on one host that gets it."""
        if self.items is None:
            yield self.path, None
            return
        for item in self.items(site):
            yield self.path.replace(ITEM, item), item

    def match(self, path: str) -> tuple[bool, str | None]:
        """Is ``path`` one of this spec's files, and for which item."""
        if self.items is None:
            return path == self.path, None
        before, _, after = self.path.partition(ITEM)
        found = re.fullmatch(re.escape(before) + r"([A-Za-z0-9_.-]+)" + re.escape(after), path)
        return found is not None, found.group(1) if found else None


def spec_for(specs: Sequence[FileSpec], path: str) -> FileSpec:
    return spec_and_item(specs, path)[0]


def spec_and_item(specs: Sequence[FileSpec], path: str) -> tuple[FileSpec, str | None]:
    for spec in specs:
        matched, item = spec.match(path)
        if matched:
            return spec, item
    raise KeyError(f"bitten generates no file {path}; known: {', '.join(s.path for s in specs)}")


def context(site: Site, host: str | None, item: str | None = None) -> dict[str, object]:
    return {"site": site, "host": host, "node": site.nodes[host] if host else None, "item": item}


def _secret_fn(what: str, secrets: Mapping[str, str] | None) -> SecretFn:
    def secret(key: str) -> str:
        if secrets is None:
            return SECRET_PLACEHOLDER.format(name=key)
        if key not in secrets:
            raise KeyError(f"{what} needs secret {key!r}, which was not given")
        return secrets[key]

    return secret


def content(spec: FileSpec, site: Site, host: str | None, secrets: Mapping[str, str] | None = None,
            item: str | None = None) -> str:
    """The file's content for ``host`` (None for a cluster-wide file); without ``secrets``, placeholders."""
    host = host if spec.per_host else None
    if spec.render is not None:
        return spec.render(site, host, _secret_fn(spec.path, secrets))
    assert spec.template is not None
    return render_template(spec.template, context(site, host, item), secrets)


def render_file(specs: Sequence[FileSpec], site: Site, path: str, host: str,
                secrets: Mapping[str, str] | None = None) -> str:
    """The content ``host`` gets at ``path``: what the roles deploy (with secrets) and render shows."""
    spec, item = spec_and_item(specs, path)
    if host not in spec.hosts(site):
        raise KeyError(f"host {host} does not get {path}")
    if spec.items is not None and item not in spec.items(site):
        raise KeyError(f"host {host} gets no {path}: {item} is not one of its items")
    return content(spec, site, host, secrets, item)


@dataclass
class RenderResult:
    files: int
    hosts: int
    unique: int


def render_tree(specs: Sequence[FileSpec], site: Site, out: Path,
                progress: Callable[[int], None] | None = None) -> RenderResult:
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
    for spec in specs:
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
                    data = content(spec, site, host, item=item).encode()
                    dest.write_bytes(data)
                    digest = hashlib.sha256(data).hexdigest()
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
