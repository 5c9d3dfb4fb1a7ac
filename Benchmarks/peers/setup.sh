# Sourced by Benchmarks/peers/run and Benchmarks/peers/zones: installs what the benchmarks need (Debian packages
# with apt, Python packages into Benchmarks/peers/.venv, never the project's .venv) and finds the strait binary.
PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PEERS/../.." && pwd)
VENV=$PEERS/.venv
source "$REPO/scripts/lib/system-deps.sh"  # apt_install

# Debian packages: wrk and nginx for the peer benchmark; for the zone experiment also iptables and what builds
# nfq_delay. (On these machines policy-rc.d keeps nginx's package from starting a system nginx.)
ensure_system_packages() {
    local missing=()
    command -v wrk > /dev/null || missing+=(wrk)
    command -v nginx > /dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    command -v java > /dev/null || missing+=(openjdk-17-jre-headless)
    if [[ ${1:-} == zones ]]; then
        command -v iptables > /dev/null || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)
        command -v gcc > /dev/null || missing+=(gcc libc6-dev)
        [[ -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ]] || missing+=(libnetfilter-queue-dev)
    fi
    if ((${#missing[@]})); then
        apt_install --no-install-recommends "${missing[@]}"
    fi
}

# The venv, made again when requirements.txt, requirements.lock or the Python version change.
ensure_venv() {
    local stamp_file=$VENV/.requirements.sha256 stamp
    if ! "$VENV/bin/python" -c 'pass' 2> /dev/null; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV"; then
            rm -rf "$VENV"
            apt_install --no-install-recommends python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    stamp=$( (cat "$PEERS/requirements.txt" "$PEERS/requirements.lock"; "$VENV/bin/python" --version) | sha256sum)
    if [[ ! -f $stamp_file || $(cat "$stamp_file") != "$stamp" ]]; then
        echo "==> installing the benchmark's Python packages into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            -r "$PEERS/requirements.txt" -c "$PEERS/requirements.lock"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps mlserver-xgboost==1.7.1
        echo "$stamp" > "$stamp_file"
    fi
}

# The strait binary: $STRAIT_BIN if set, else a release build of this checkout.
strait_binary() {
    if [[ -n ${STRAIT_BIN:-} ]]; then
        [[ -x $STRAIT_BIN ]] || { echo "STRAIT_BIN=$STRAIT_BIN is not an executable" >&2; return 1; }
        echo "$STRAIT_BIN"
        return
    fi
    ensure_build_deps >&2
    swift build -c release --package-path "$REPO" --product strait >&2
    echo "$REPO/.build/release/strait"
}
