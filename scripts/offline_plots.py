#!/usr/bin/env python3
"""Write pipelines/plots/offline.html: `dvc plots show`'s page template with Vega, Vega-Lite and
Vega-Embed inside it, so the charts draw without a network.

DVC's own page loads the three libraries from cdn.jsdelivr.net (a blank page offline); DVC has
no option to bundle them, only `plots.html_template` (.dvc/config points it here). The template
has no `{scripts}` placeholder, so DVC's CDN script tags are dropped, and keeps `{plot_divs}`
(the charts) and `{refresh_tag}`.

    python scripts/offline_plots.py            # npm pack the pinned versions, check, write
    python scripts/offline_plots.py --check    # offline: the committed file embeds them intact

Each npm tarball and each embedded build file is checked against its pinned SHA-256; the header
of the page records versions, hashes and the packages' BSD-3-Clause licence.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "pipelines" / "plots" / "offline.html"


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    build: str  # the UMD bundle inside the tarball, which defines a global (vega, vegaLite, ...)
    tarball_sha256: str
    build_sha256: str  # of the bundle as embedded (its sourceMappingURL line removed)


# vega-embed 6 renders the Vega-Lite 5 specs DVC's templates write; the newest of each major.
LIBRARIES = (
    Library(
        "vega", "5.33.1", "package/build/vega.min.js",
        "1b8504b6731c5311be3269c4d84ca996a5cc293bc772283293ede20c490e16c3",
        "a701d1e94543be028690c98a749d7cefd4bf6074219096103e70c611093cef56",
    ),
    Library(
        "vega-lite", "5.23.0", "package/build/vega-lite.min.js",
        "e4cbfdd8f6f1abe381c59cd558fd6a559c12b1496bfdf2e0c3295263a40fe4da",
        "594f554cecafe6b992d51b7c00f4c0e5fc5f92114c7e1a641d2cf150f21cc60d",
    ),
    Library(
        "vega-embed", "6.29.0", "package/build/vega-embed.min.js",
        "ecf1ee709c2bac9e0a4ead6908114b05b62c71493e10a8a4308109bb070f8eb1",
        "dbd49aff8999dfb12983cbcefeefb355ae72af68d7556ddcec12193a0eb46450",
    ),
)  # fmt: skip

# Vega's tarball ships no LICENSE file (its package.json says BSD-3-Clause, by the same
# Interactive Data Lab); the text below is the one vega-lite and vega-embed ship.
BSD3 = """Copyright (c) 2015, University of Washington Interactive Data Lab.
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors
  may be used to endorse or promote products derived from this software
  without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE."""

# DVC fills these (dvc_render.html.HTML.embed replaces them anywhere in the page): they may
# appear only where meant, never inside an embedded library.
PLACEHOLDERS = ("{scripts}", "{plot_divs}", "{refresh_tag}")
_BEGIN = "<!-- embedded: {name} {version} sha256 {sha} -->"
_BEGIN_RE = re.compile(r"<!-- embedded: (\S+) (\S+) sha256 ([0-9a-f]{64}) -->\n<script>\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_text(tarball: bytes, lib: Library) -> str:
    """The library's bundle from its npm tarball, fit to sit inside a <script> element."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile(lib.build)
        if member is None:
            raise SystemExit(f"error: {lib.name} {lib.version} has no {lib.build}")
        text = member.read().decode("utf-8")
    # The map is not shipped; the comment would only make a browser's devtools ask for it.
    text = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)
    bad = [p for p in (*PLACEHOLDERS, "</script", "<!--") if p in text]
    if bad:
        raise SystemExit(f"error: {lib.name} {lib.version} contains {bad}: cannot embed it")
    return text


def page(builds: dict[str, str]) -> str:
    """The template: licence header, the three bundles inline, DVC's placeholders."""
    versions = ", ".join(f"{lib.name} {lib.version}" for lib in LIBRARIES)
    parts = [
        "<!DOCTYPE html>",
        "<!--",
        "DVC plots page that works offline: written by scripts/offline_plots.py, do not edit.",
        f"Embeds {versions} from their npm packages, each under the BSD-3-Clause licence",
        "(package.json of each; vega-lite and vega-embed ship this LICENSE text):",
        "",
        BSD3,
        "-->",
        "<html>",
        "<head>",
        '<meta charset="utf-8">',
        "{refresh_tag}",
        "<title>DVC Plot</title>",
    ]
    for lib in LIBRARIES:
        text = builds[lib.name]
        parts += [
            _BEGIN.format(name=lib.name, version=lib.version, sha=sha256(text.encode())),
            "<script>",
            text.rstrip("\n"),
            "</script>",
        ]
    parts += [
        "<style>",
        "table { border-spacing: 15px; }",
        "</style>",
        "</head>",
        "<body>",
        "{plot_divs}",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def embedded(html: str) -> dict[str, tuple[str, str, str]]:
    """name -> (version, recorded sha256, sha256 of the embedded text) for each library."""
    out = {}
    for m in _BEGIN_RE.finditer(html):
        end = html.index("\n</script>", m.end())
        text = html[m.end() : end] + "\n"
        out[m.group(1)] = (m.group(2), m.group(3), sha256(text.encode()))
    return out


def check(html: str) -> list[str]:
    """What is wrong with a template (empty: it embeds exactly the pinned bundles)."""
    problems = []
    found = embedded(html)
    for lib in LIBRARIES:
        if lib.name not in found:
            problems.append(f"{lib.name} is not embedded")
            continue
        version, recorded, actual = found[lib.name]
        if (version, recorded, actual) != (lib.version, lib.build_sha256, lib.build_sha256):
            problems.append(
                f"{lib.name}: embedded {version} sha256 {actual[:12]} (recorded {recorded[:12]}), "
                f"pinned {lib.version} sha256 {lib.build_sha256[:12]}"
            )
    for p in ("{plot_divs}", "{refresh_tag}"):
        if html.count(p) != 1:
            problems.append(f"{p} appears {html.count(p)} times, not once")
    if "{scripts}" in html:
        problems.append("{scripts} would bring back DVC's CDN script tags")
    if re.search(r"<script[^>]+src=", html):
        problems.append("a <script src=...> loads from outside the page")
    return problems


def npm_pack(lib: Library, into: Path) -> bytes:
    spec = f"{lib.name}@{lib.version}"
    done = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(into)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"error: npm pack {spec} failed:\n{done.stderr.strip()}")
    data = (into / json.loads(done.stdout)[0]["filename"]).read_bytes()
    if sha256(data) != lib.tarball_sha256:
        raise SystemExit(
            f"error: {spec} tarball sha256 {sha256(data)}, pinned {lib.tarball_sha256}"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="check the committed file (offline)")
    ap.add_argument("--out", type=Path, default=TEMPLATE)
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.out.read_text(encoding="utf-8"))
        for p in problems:
            print(f"error: {args.out}: {p}", file=sys.stderr)
        return 2 if problems else 0
    builds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in LIBRARIES:
            text = build_text(npm_pack(lib, Path(tmp)), lib)
            if sha256(text.encode()) != lib.build_sha256:
                raise SystemExit(
                    f"error: {lib.name} {lib.version} {lib.build}: sha256 "
                    f"{sha256(text.encode())}, pinned {lib.build_sha256}"
                )
            builds[lib.name] = text
    html = page(builds)
    assert not check(html), check(html)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(html, encoding="utf-8")
    tmp_out.replace(args.out)
    print(f"wrote {args.out} ({len(html.encode()) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
