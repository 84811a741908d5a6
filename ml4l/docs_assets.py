"""Great Expectations' Data Docs without a network: the CSS and JavaScript its pages load from CDNs, served locally.

GX 1.x pages link jQuery, Bootstrap 4, bootstrap-table, Font Awesome, Vega, ... from
CDNs; its index page is a bootstrap-table filled by JavaScript, so offline it is blank.
:func:`install` fetches those exact files once, from their npm packages (``npm pack``,
the npm registry's ordinary client), into ``<venv>/share/ml4l/data-docs-assets``
(``make venv`` runs it); :func:`localize` copies them into a Data Docs site and points
each page at its copy.

    python -m ml4l.docs_assets [TARGET]      # install the assets
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# CDN address in GX's templates -> (npm package@version, file or folder inside the package)
CDN_FILES: dict[str, tuple[str, str]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery@3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": ("popper.js@1.12.9", "dist/umd/popper.min.js"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": ("bootstrap@4.3.1", "dist/js/bootstrap.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": ("bootstrap@4.3.1", "dist/css/bootstrap.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": ("bootstrap-table@1.19.1", "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": ("bootstrap-table@1.19.1", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker@1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker@1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark@1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": ("@fortawesome/fontawesome-free@6.6.0", "css/all.min.css"),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega@5.33.1", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite@5.23.0", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed@6.29.0", "build/vega-embed.min.js"),
}
# files a stylesheet above loads relative to itself
EXTRA_FILES: list[tuple[str, str]] = [("@fortawesome/fontawesome-free@6.6.0", "webfonts")]
VENDOR = "static/vendor"  # inside a Data Docs site

_LINK = re.compile(r'(src|href)="(https://[^"]+)"([^>]*)>')
# GX's logos, fetched with the context's id as a query: GX ships its logo in the site's static/images
_GX_IMAGES = re.compile(r'https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/[\w.-]+(\?[^"]*)?')
_CORS_ATTRIBUTES = re.compile(r'\s+(integrity="[^"]*"|crossorigin="[^"]*")')


def default_dir() -> Path:
    """Where ``make venv`` installs the assets: ``<sys.prefix>/share/ml4l/data-docs-assets``."""
    return Path(os.environ.get("ML4L_DOCS_ASSETS", Path(sys.prefix) / "share" / "ml4l" / "data-docs-assets"))


def local_name(package: str, inner: str) -> str:
    """The asset's path under the vendor folder: ``<package name>/<path in the package>``."""
    return f"{package.rsplit('@', 1)[0].lstrip('@').replace('/', '-')}/{inner}"


def install(target: Path | None = None) -> Path:
    """Fetch every asset with ``npm pack`` into ``target``; returns it. Files already there are kept."""
    target = target or default_dir()
    wanted: dict[str, list[str]] = {}
    for package, inner in [*CDN_FILES.values(), *EXTRA_FILES]:
        wanted.setdefault(package, []).append(inner)
    with tempfile.TemporaryDirectory() as scratch:
        for package, inners in wanted.items():
            if all((target / local_name(package, inner)).exists() for inner in inners):
                continue
            packed = subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", scratch, package], check=True, capture_output=True, text=True
            ).stdout.split()[-1]
            with tarfile.open(Path(scratch) / packed) as archive:
                for member in archive.getmembers():  # npm tarballs hold the package under package/
                    inside = member.name.removeprefix("package/")
                    if member.isfile() and any(inside == inner or inside.startswith(inner + "/") for inner in inners):
                        out = target / local_name(package, inside)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        source = archive.extractfile(member)
                        assert source is not None
                        out.write_bytes(source.read())
    missing = [local_name(p, i) for p, i in CDN_FILES.values() if not (target / local_name(p, i)).is_file()]
    if missing:
        raise RuntimeError(f"Data Docs assets missing after npm pack: {', '.join(missing)}")
    return target


def installed(source: Path | None = None) -> bool:
    """Whether every asset is in ``source``."""
    source = source or default_dir()
    return all((source / local_name(p, i)).is_file() for p, i in CDN_FILES.values())


def copy_into(site: Path, source: Path | None = None) -> bool:
    """Copy the assets into ``<site>/static/vendor`` once; whether the site has them."""
    source = source or default_dir()
    vendor = site / VENDOR
    if installed(vendor):
        return True
    if not installed(source):
        logging.getLogger(__name__).warning(
            "Data Docs assets are not installed in %s (run `python -m ml4l.docs_assets`); pages keep their CDN links", source
        )
        return False
    shutil.copytree(source, vendor, dirs_exist_ok=True)
    return True


def localize(page: Path, site: Path) -> None:
    """Point ``page`` (under ``site``) at the site's local copies of its CDN assets, if the site has them."""
    if not installed(site / VENDOR):
        return
    prefix = os.path.relpath(site / VENDOR, page.parent)
    html = _GX_IMAGES.sub(os.path.relpath(site / "static" / "images" / "logo-long.png", page.parent), page.read_text())

    def local(match: re.Match[str]) -> str:
        attribute, url, rest = match.groups()
        if url not in CDN_FILES:
            return match.group(0)
        # SRI and CORS attributes make a browser refuse a file:// script
        return f'{attribute}="{prefix}/{local_name(*CDN_FILES[url])}"{_CORS_ATTRIBUTES.sub("", rest)}>'

    page.write_text(_LINK.sub(local, html))


if __name__ == "__main__":
    print(install(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
