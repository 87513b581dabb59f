#!/usr/bin/env bash
# Vendors the viewer's browser libraries from npm into the package, so the
# page works offline and no CDN is touched at run time.  Re-run to upgrade:
#   bash scripts/vendor-viewer-js.sh [UPLOT_VERSION]
# It copies the minified build, its stylesheet and its LICENSE into
# services/viewer/src/rezolus_viewer/static/vendor/ and records the version.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-1.6.32}
dest=services/viewer/src/rezolus_viewer/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar -xzf "uplot-$version.tgz")
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$work/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$work/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uplot $version (npm), files: uPlot.iife.min.js uPlot.min.css uPlot.LICENSE" > "$dest/VERSIONS"
echo "vendored uplot $version into $dest" >&2
