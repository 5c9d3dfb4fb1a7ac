# Sourced by scripts/serve and scripts/test: installs, with apt, the system packages building Strait needs.
as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [[ $apt_updated == 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

ensure_build_deps() {
    local missing=()
    command -v pkg-config > /dev/null || missing+=(pkg-config)
    if ! pkg-config --exists sqlite3 2> /dev/null || [[ ! -f /usr/include/sqlite3.h ]]; then
        missing+=(libsqlite3-dev)
    fi
    if [[ ! -f /usr/include/zlib.h ]]; then
        missing+=(zlib1g-dev)
    fi
    if [[ ! -f /usr/include/openssl/sha.h ]]; then
        missing+=(libssl-dev)
    fi
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
}

# The end-to-end suite runs the Docker backend against a dockerd it starts by hand, and builds its test image with
# gcc -static. (On these machines policy-rc.d keeps docker.io's package from starting a system daemon.)
ensure_e2e_deps() {
    local missing=()
    command -v dockerd > /dev/null || [[ -x /usr/sbin/dockerd ]] || missing+=(docker.io)
    command -v gcc > /dev/null || missing+=(gcc)
    compgen -G "/usr/lib/*/libc.a" > /dev/null || missing+=(libc6-dev)
    if ((${#missing[@]})); then
        apt_install --no-install-recommends "${missing[@]}"
    fi
}
