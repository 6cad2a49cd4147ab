#!/bin/sh
# ruby-via-wasm.sh -e PROGRAM: a `ruby -e` for machines without Ruby, for tests of commands that run
# Ruby (ood-jupyter preview, through OOD_JUPYTER_RUBY). It runs PROGRAM with standard input under
# CRuby 3.4 compiled to WebAssembly (./wasm-ruby.mjs). Test support, not a Ruby of its own.
set -eu
[ "${1:-}" = -e ] || { echo "ruby-via-wasm.sh: only -e PROGRAM is supported" >&2; exit 64; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s\n' "$2" >"$dir/program.rb"
cat >"$dir/stdin"
here=$(dirname "$0")
node --single-threaded-gc --no-incremental-marking --disable-warning=ExperimentalWarning \
  "$here/wasm-ruby.mjs" --stdin-file "$dir/stdin" "$dir/program.rb"
