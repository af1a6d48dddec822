#!/bin/sh
# check-bpf-generated.sh: CI drift check of the committed bpf2go output.
#
# For every package with a `//go:generate go tool bpf2go ...` line, runs
# that same bpf2go command with its output into a temporary directory
# and fails if any generated file (.go, .o) differs from the committed
# one. Needs clang, llvm-strip and libbpf headers (apt-get install clang
# llvm libbpf-dev); without clang it prints SKIP and exits 0.
#
# To fix a reported drift: `go generate ./internal/datapath/ebpf/` and
# commit the regenerated files together with the C sources.
set -eu
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null 2>&1 || ! command -v llvm-strip >/dev/null 2>&1; then
	echo "check-bpf-generated: SKIP: clang or llvm-strip not installed (apt-get install -y clang llvm libbpf-dev)"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
checked=0
for gen in $(grep -rl --include='*.go' '^//go:generate go tool bpf2go ' internal cmd 2>/dev/null); do
	dir=$(dirname "$gen")
	pkg=$(sed -n 's/^package \([a-zA-Z0-9_]*\).*/\1/p' "$gen" | head -n 1)
	out="$tmp/$(echo "$dir" | tr / _)"
	mkdir -p "$out"
	grep '^//go:generate go tool bpf2go ' "$gen" | while IFS= read -r line; do
		args=${line#//go:generate go tool bpf2go }
		# shellcheck disable=SC2086 # the arguments are split as go generate splits them (no quoting used)
		(cd "$dir" && GOPACKAGE="$pkg" go tool bpf2go -output-dir "$out" $args) >"$out.log" 2>&1 || {
			echo "check-bpf-generated: FAIL: bpf2go in $dir:"
			cat "$out.log"
			exit 1
		}
	done || { status=1; continue; }
	for f in "$out"/*; do
		name=$(basename "$f")
		if [ ! -f "$dir/$name" ]; then
			echo "check-bpf-generated: FAIL: $dir/$name is generated but not committed"
			status=1
		elif ! cmp -s "$f" "$dir/$name"; then
			echo "check-bpf-generated: FAIL: $dir/$name differs from what its sources generate (run go generate ./$dir/ and commit)"
			status=1
		fi
	done
	checked=$((checked + 1))
done

if [ "$checked" -eq 0 ]; then
	echo "check-bpf-generated: FAIL: no bpf2go go:generate line found"
	exit 1
fi
[ "$status" -eq 0 ] && echo "check-bpf-generated: OK ($checked package(s))"
exit "$status"
