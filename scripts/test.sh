#!/usr/bin/env bash
# scripts/test.sh -- every check and test: installs what it needs (Debian
# packages incl. clang/llvm/libbpf-dev for the eBPF drift check, Go if
# missing), then gofmt, go vet, staticcheck, the check that the committed
# eBPF objects match their C sources, `go test -race` of every package
# but test/e2e, which runs the unit tests, the fuzz targets' seeds and, as
# root, the privileged namespace tests (internal/lab, datapaths, ...), then
# the end-to-end suite (test/e2e) once per datapath: userspace, then
# ebpf. Needs root; it re-runs itself with sudo otherwise. Env: TEST_TIMEOUT (default 25m),
# HIVENET_E2E_RACE (default 1; empty builds the e2e binary without -race),
# GOFLAGS as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh
need_root "$@"
install_debs
# The eBPF drift check regenerates the committed objects from their C sources.
if ! command -v clang >/dev/null || ! command -v llvm-strip >/dev/null || [ ! -e /usr/include/bpf/bpf_helpers.h ]; then
    echo "installing: clang llvm libbpf-dev" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang llvm libbpf-dev >/dev/null
fi
ensure_go
echo "== go $(go env GOVERSION), $(nproc) CPUs"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
    echo "not gofmt'ed:" >&2; echo "$unformatted" >&2; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck (pinned in go.mod as a tool)"
go tool staticcheck ./...

echo "== committed eBPF objects match their C sources"
sh scripts/check-bpf-generated.sh

echo "== go test -race (unit, fuzz seeds, privileged namespace tests; the e2e suite below)"
go test -race -count=1 -timeout "${TEST_TIMEOUT:-25m}" $(go list ./... | grep -v '/test/e2e$')

# The end-to-end suite runs once per datapath, each named explicitly (the
# agents' default is ebpf). Its hivenet binary is built with -race too: a
# data race in the server or an agent under real traffic fails the test
# that saw it.
export HIVENET_E2E_RACE="${HIVENET_E2E_RACE-1}"
echo "== end-to-end suite, userspace datapath (agents --datapath userspace)"
go test -race -count=1 -timeout "${TEST_TIMEOUT:-25m}" ./test/e2e -datapath userspace -e2e.prefix hle-
echo "== end-to-end suite, eBPF datapath (agents --datapath ebpf)"
go test -count=1 -timeout "${TEST_TIMEOUT:-25m}" ./test/e2e -datapath ebpf -e2e.prefix hlb-
echo "== all green"
