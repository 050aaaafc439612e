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
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitten.core.templating import SECRET_PLACEHOLDER, compress_hosts, expand_hosts, render_template
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
    #: for a per-host file whose content depends on the host only through this value (its hardware profile, say):
    #: rendered once per value
    variant: Callable[[Site, str], Hashable] | None = None
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    description: str = ""
    #: shown by `bitten render` for review, never written to a host (e.g. the accounting slurmdbd is asked for)
    review_only: bool = False
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


def render_for(specs: Sequence[FileSpec], site: Site, path: str, hosts: Sequence[str],
               secrets: Mapping[str, str] | None = None) -> dict[str, str]:
    """``path``'s content for each of ``hosts`` that gets it; a cluster-wide file is rendered once."""
    spec = spec_for(specs, path)
    receivers = set(spec.hosts(site))
    out: dict[str, str] = {}
    shared: str | None = None
    for host in hosts:
        if host not in receivers:
            continue
        if spec.per_host:
            out[host] = content(spec, site, host, secrets)
        else:
            if shared is None:
                shared = content(spec, site, host, secrets)
            out[host] = shared
    return out


@dataclass
class RenderResult:
    files: int
    hosts: int
    unique: int


class RenderRefused(Exception):
    """``out`` holds something that is not an earlier render: bitten never replaces it."""


#: first line of MARKER: what tells an earlier render from any other directory
MARKER = ".bitten-render"
BY_HOST = ".by-host"


def render_tree(specs: Sequence[FileSpec], site: Site, out: Path,
                progress: Callable[[int], None] | None = None) -> RenderResult:
    """Write every generated file once per distinct content, for review, and ``out/manifest.tsv``.

    Layout (so that a cluster-wide change is one hunk of a diff, not one per host):

    - ``out/<path>``: the file, when every host that gets it gets the same content (slurm.conf, /etc/hosts);
    - ``out/<path>.by-host/<hosts>``: one file per distinct content when hosts get different ones, named by the
      hosts that get it in Slurm's hostlist notation (gpu[01-16]);
    - ``out/manifest.tsv``: per path and content, the hosts (hostlist), mode, owner and digest.

    Secrets appear as placeholders. ``out`` is replaced as a whole when it is empty or an earlier render (so no
    stale file survives); any other directory is refused (RenderRefused) and left alone.
    """
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise RenderRefused(f"{out} is not empty and not an earlier `bitten render` (no {MARKER} in it): "
                            "give a new or empty directory")
    tmp = out.with_name(out.name + ".rendering")
    if tmp.exists():
        if not (tmp / MARKER).is_file():
            raise RenderRefused(f"{tmp} exists and is not bitten's: remove it or give another --out")
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / MARKER).write_text(f"bitten render of site {site.info.name}: every generated file, once per distinct "
                              "content; see manifest.tsv\n")
    written = unique = 0
    hosts: set[str] = set()
    manifest: list[str] = []
    made: set[Path] = set()
    for spec in specs:
        targets = spec.hosts(site)
        if not targets:
            continue
        for path, item in spec.paths(site):
            # content -> hosts that get it (a cluster-wide file is rendered once)
            variants: dict[bytes, list[str]] = {}
            if spec.per_host:
                by_key: dict[Hashable, bytes] = {}
                for host in targets:
                    key = spec.variant(site, host) if spec.variant is not None else host
                    data = by_key.get(key)
                    if data is None:
                        data = by_key[key] = content(spec, site, host, item=item).encode()
                    variants.setdefault(data, []).append(host)
            else:
                variants[content(spec, site, targets[0], item=item).encode()] = list(targets)
            relative = path.lstrip("/")
            for data, members in variants.items():
                listed = members[0] if len(members) == 1 else compress_hosts(members)
                dest = tmp / relative if len(variants) == 1 else tmp / f"{relative}{BY_HOST}" / listed
                if dest.parent not in made:
                    os.makedirs(dest.parent, exist_ok=True)
                    made.add(dest.parent)
                _write(dest, data)
                digest = hashlib.sha256(data).hexdigest()
                mode, owner = ("review", "-") if spec.review_only else (spec.mode, f"{spec.owner}:{spec.group}")
                manifest.append(f"{path}\t{listed}\t{mode}\t{owner}\t{digest}\n")
                unique += 1
            written += len(targets)
        hosts.update(targets)
        if progress:
            progress(len(targets))
    # what each file's mode and owner will be on the host: reviews see a permission change as a diff too
    (tmp / MANIFEST).write_text("path\thosts\tmode\towner\tsha256\n" + "".join(sorted(manifest)))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return RenderResult(files=written, hosts=len(hosts), unique=unique)


def _write(dest: Path, data: bytes) -> None:
    """A new file of the render tree (tens of thousands at 10,000 nodes: the system calls, without pathlib's)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def rendered(out: Path, host: str, path: str) -> Path:
    """Where a render tree holds the content ``host`` gets at ``path`` (for reviews and tests)."""
    relative = path.lstrip("/")
    for line in (out / MANIFEST).read_text().splitlines()[1:]:
        file, listed, *_ = line.split("\t")
        if file == path and host in expand_hosts(listed):
            single = out / relative
            return single if single.is_file() else out / f"{relative}{BY_HOST}" / listed
    raise KeyError(f"{host} gets no {path} in {out}")
