# scripts/lib.sh -- shared by demo.sh and test.sh: root, Debian packages, Go.
# Sourced, not executed.

# The Debian packages the lab, the end-to-end tests and the benchmarks use.
HIVENET_DEBS="iproute2 isc-dhcp-client iputils-ping traceroute iperf3 jq curl procps ca-certificates"
# The Go release go.mod needs; used only when no suitable go is installed.
HIVENET_GO_VERSION=1.26.8

# need_root re-runs the calling script with sudo when not root.
need_root() {
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
        exec sudo -E PATH="$PATH" "$0" "$@"
    fi
}

# install_debs installs the packages whose tools are missing (all of them
# with apt-get when any is missing; nothing when all are there).
install_debs() {
    local missing=0 t
    for t in ip dhclient ping traceroute iperf3 jq curl pgrep; do
        command -v "$t" >/dev/null || missing=1
    done
    [ "$missing" = 0 ] && return 0
    echo "installing: $HIVENET_DEBS" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $HIVENET_DEBS >/dev/null
}

# ensure_go puts Go >= HIVENET_GO_VERSION's minor on PATH: /usr/local/go if
# present, else the official tarball from go.dev unpacked into /usr/local/go.
ensure_go() {
    export PATH="/usr/local/go/bin:$PATH"
    local want_minor have
    want_minor=$(echo "$HIVENET_GO_VERSION" | cut -d. -f2)
    if command -v go >/dev/null; then
        have=$(go env GOVERSION | sed 's/^go//' | cut -d. -f2)
        [ "${have:-0}" -ge "$want_minor" ] && return 0
        echo "go $(go env GOVERSION) is too old; need go1.$want_minor" >&2
    fi
    local arch tgz
    arch=$(dpkg --print-architecture)
    tgz="go$HIVENET_GO_VERSION.linux-$arch.tar.gz"
    echo "installing Go $HIVENET_GO_VERSION into /usr/local/go" >&2
    curl -fsSL "https://go.dev/dl/$tgz" -o "/tmp/$tgz"
    rm -rf /usr/local/go && tar -C /usr/local -xzf "/tmp/$tgz" && rm -f "/tmp/$tgz"
}
