# shellcheck shell=bash
# Installs what building and testing Pulseboard needs, once per machine.
# Everything goes to caches outside the checkout, so a fresh clone on the same
# machine rebuilds nothing it does not have to.
#
#   ensure_build_tools   wasm target, std source, cargo-leptos, wasm-bindgen, wasm-opt, chart font
#   ensure_test_tools    the above plus Chromium, Java, Maven, Playwright
#   leptos_build         the release server and this clone's own browser bundle
#                        (--frontend-only: the bundle alone)

PULSEBOARD_CACHE=${PULSEBOARD_CACHE:-$HOME/.cache/pulseboard}
export PULSEBOARD_CACHE
# One cargo target dir per machine, shared by every clone.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PULSEBOARD_CACHE/target}
# Every clone builds its own copy of the workspace crates; incremental caches of
# each would pile up in the shared target dir for little gain in one-off runs.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export PATH="$PULSEBOARD_CACHE/cargo-leptos/bin:$HOME/.cargo/bin:$PULSEBOARD_CACHE/npm-tools/node_modules/.bin:$PATH"

# binaryen 132's wasm-opt; older ones emit wasm that current Chromium rejects.
BINARYEN_VERSION=132.0.0

say() { printf '==> %s\n' "$*" >&2; }

_apt_updated=
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=
  [[ $(id -u) -ne 0 ]] && sudo="sudo -n"
  say "installing Debian packages: ${missing[*]}"
  if [[ -z $_apt_updated ]]; then
    $sudo apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The wasm-bindgen version the lock file pins; the CLI must match it exactly.
locked_wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_build_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the Rust wasm32-unknown-unknown target (first run only)"
    rustup target add wasm32-unknown-unknown >&2
  fi
  # The standard library's source: the browser bundle builds its own copy.
  if ! rustup component list --installed | grep -qx 'rust-src.*'; then
    say "adding the Rust standard library's source (first run only)"
    rustup component add rust-src >&2
  fi
  # cargo-leptos from scripts/cargo-leptos, whose lock file carries the
  # splitter that per-page bundles need; rebuilt when that lock file changes.
  local leptos_root=$PULSEBOARD_CACHE/cargo-leptos leptos_lock
  leptos_lock=$(sha256sum scripts/cargo-leptos/Cargo.lock | cut -c1-16)
  if [[ $(cat "$leptos_root/lock-hash" 2>/dev/null) != "$leptos_lock" ]]; then
    say "building cargo-leptos (first run only, about 15 minutes)"
    CARGO_TARGET_DIR=$PULSEBOARD_CACHE/target-tools \
      cargo install --locked --force --path scripts/cargo-leptos --root "$leptos_root" >&2
    echo "$leptos_lock" >"$leptos_root/lock-hash"
  fi
  local bindgen
  bindgen=$(locked_wasm_bindgen_version)
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $bindgen\$"; then
    say "installing wasm-bindgen-cli $bindgen to match Cargo.lock (first run only)"
    cargo install wasm-bindgen-cli --version "$bindgen" --force >&2
  fi
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    say "installing wasm-opt (binaryen $BINARYEN_VERSION from npm, first run only)"
    mkdir -p "$PULSEBOARD_CACHE/npm-tools"
    npm install --silent --no-audit --no-fund --prefix "$PULSEBOARD_CACHE/npm-tools" "binaryen@$BINARYEN_VERSION" >&2
  fi
  # Chart labels need a font on the server; Kafka's TLS and SCRAM need OpenSSL.
  apt_install fonts-dejavu-core libssl-dev pkg-config
}

# `cargo leptos build` of the release site, for this clone. The app library,
# in the browser bundle and in the release server, is a file named without a
# hash, so clones sharing the target dir write the same files, and cargo,
# finding them newer than this clone's sources, would keep another clone's
# build: code whose server function paths (hashed from the clone's path) the
# other half does not serve. The clone that built them last is noted; another
# one removes them, so they are built again from this clone.
leptos_build() {
  local front=$CARGO_TARGET_DIR/front
  if [[ $(cat "$front/built-by" 2>/dev/null) != "$PWD" ]]; then
    rm -f "$front"/wasm32-unknown-unknown/*/app.wasm "$front"/wasm32-unknown-unknown/*/deps/app.wasm \
      "$CARGO_TARGET_DIR"/release/deps/libapp.*
    mkdir -p "$front"
    echo "$PWD" >"$front/built-by"
  fi
  # Release, each route's code in its own modules, and every site file also
  # stored brotli- and gzip-compressed, which the server sends as they are.
  # Every `cargo leptos build` first empties the site, so the server comes
  # first, and the browser bundle is built apart with flags of its own.
  if [[ ${1:-} != --frontend-only ]]; then
    cargo leptos build --release --server-only >&2
  fi
  # The browser bundle is built with a standard library compiled for size,
  # and a panic stops it at once, without formatting a message or naming its
  # source file: the largest page went from 317 to 291 KiB (brotli). These
  # options are unstable, which the stable compiler takes with
  # RUSTC_BOOTSTRAP=1; set for this build alone, they leave the server's build
  # as it is. A RUSTFLAGS of the caller's would replace the target's flags.
  env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    RUSTC_BOOTSTRAP=1 \
    CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
    CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
    cargo leptos build --release --split --precompress --frontend-only >&2
  # cargo-leptos's gzip is about 15 % larger than gzip -9's for the wasm.
  local packed
  find target/site -type f -name '*.gz' -print0 | while IFS= read -r -d '' packed; do
    gzip -9 -n -c "${packed%.gz}" >"$packed"
  done
}

ensure_test_tools() {
  ensure_build_tools
  apt_install chromium
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  ensure_python_tools
  if [[ ! -d end2end/node_modules/@playwright/test ]] || [[ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]]; then
    say "installing the browser test runner (npm ci in end2end/)"
    (cd end2end && npm ci --silent --no-audit --no-fund >&2)
  fi
}

# A virtualenv in the cache with the AWS SDK and pytest, for the SDK tests.
PULSEBOARD_PYTHON=$PULSEBOARD_CACHE/python/bin/python
ensure_python_tools() {
  local wanted=end2end/sdk/requirements.txt
  local marker=$PULSEBOARD_CACHE/python/requirements.txt
  if [[ -x $PULSEBOARD_PYTHON ]] && cmp -s "$wanted" "$marker"; then
    return 0
  fi
  say "installing the SDK test tools (boto3, pytest) into a virtualenv (first run only)"
  python3 -m venv "$PULSEBOARD_CACHE/python" >&2
  "$PULSEBOARD_PYTHON" -m pip install --quiet --disable-pip-version-check -r "$wanted" >&2
  cp "$wanted" "$marker"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cargo-fuzz runs on stable Rust without a sanitizer (`--sanitizer none`).
CARGO_FUZZ_VERSION=0.13.1
ensure_fuzz_tools() {
  if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (first run only)"
    CARGO_TARGET_DIR=$PULSEBOARD_CACHE/target-tools \
      cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --force >&2
  fi
}

# Runs fuzz target $1 for $2 seconds, its corpus kept in the cache; fails
# on a crash, a hang (10 s for one input) or 1 GiB of memory.
fuzz_for() {
  local target=$1 seconds=$2
  local corpus=$PULSEBOARD_CACHE/fuzz/corpus/$target artifacts=$PULSEBOARD_CACHE/fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  CARGO_TARGET_DIR=$PULSEBOARD_CACHE/target-fuzz \
    cargo fuzz run --fuzz-dir server/fuzz --sanitizer none "$target" "$corpus" "server/fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >&2
}
