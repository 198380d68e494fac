#!/usr/bin/env bash
# Loopback comparison of the example server with Prosody, in plaintext and
# with STARTTLS on both sides (same certificate), rounds alternating in one
# run: prosody/plain, ours/plain, prosody/tls, ours/tls, repeated ROUNDS
# times, each run on a fresh server process. Results (one key=value line
# per loadgen phase, plus the load average before each run) go to
# $OUT/results.log. See BENCHMARKS.md.
#
# Usage: benches/loopback-prosody.sh   (from the repository root, as root:
# Prosody runs as the prosody user through ../shared/acceptance/start-prosody.sh)
# Knobs: ROUNDS [3], USERS [500], OUT [a new temporary directory].
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-500}
OUT=${OUT:-$(mktemp -d)}
chmod 755 "$OUT"   # Prosody (its own user) reads its directory inside
SHARED=../shared/acceptance
OURS_PORT=5322
PROSODY_PORT=5422
export PROSODY_DIR="$OUT/prosody" PROSODY_PORT PROSODY_LOAD_USERS=$USERS
LOG="$OUT/results.log"
log() { echo "[bench] $*" | tee -a "$LOG" >&2; }

cargo build --release --example server --example loadgen
for i in $(seq 1 "$USERS"); do echo "load$i:password$i"; done > "$OUT/users.txt"

# A throwaway CA and a certificate for localhost signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$OUT/key.pem" -out "$OUT/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$OUT/leaf.ext"
openssl x509 -req -in "$OUT/leaf.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -days 2 -extfile "$OUT/leaf.ext" -out "$OUT/cert.pem" 2>/dev/null

# Prosody: the script writes the config and the accounts; then mod_tls is
# enabled with the same certificate (STARTTLS offered, not required, so
# one configuration serves both the plaintext and the TLS runs).
"$SHARED/start-prosody.sh" start
"$SHARED/start-prosody.sh" stop
CFG="$PROSODY_DIR/prosody.cfg.lua"
cp "$OUT/cert.pem" "$OUT/key.pem" "$PROSODY_DIR/certs/"
chown -R prosody:prosody "$PROSODY_DIR/certs"
sed -i 's/^modules_disabled = { "s2s"; "tls"; }/modules_disabled = { "s2s"; }/' "$CFG"
sed -i 's/^modules_enabled = {$/modules_enabled = {\n        "tls";/' "$CFG"
cat >> "$CFG" <<EOF
ssl = { certificate = "$PROSODY_DIR/certs/cert.pem"; key = "$PROSODY_DIR/certs/key.pem"; }
EOF
# ssl must be global: move the VirtualHost line after it.
sed -i '/^VirtualHost "localhost"$/d' "$CFG"
echo 'VirtualHost "localhost"' >> "$CFG"
grep -q '"s2s"; }' "$CFG"

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

loadgen() { # PORT PID LABEL [TLS args...]
    local port=$1 pid=$2 label=$3
    shift 3
    log "$label: loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    timeout 180 target/release/examples/loadgen --host 127.0.0.1 --port "$port" \
        --users "$USERS" --password-pattern 'password{i}' --login-concurrency 50 \
        --window 16 --paced-rate 1000 --paced-duration 5 --warmup 1 --duration 10 \
        --server-pid "$pid" --label "$label" "$@" | tee -a "$LOG"
}

run_prosody() { # MODE
    local mode=$1 args=()
    [ "$mode" = tls ] && args=(--starttls --ca "$OUT/ca.pem")
    setsid runuser -u prosody -- sh -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec prosody -F --config "$0"' \
        "$CFG" </dev/null >>"$PROSODY_DIR/stdout.log" 2>&1 &
    wait_port "$PROSODY_PORT"
    sleep 0.5
    loadgen "$PROSODY_PORT" "$(cat "$PROSODY_DIR/prosody.pid")" "prosody-$mode/r$round" "${args[@]}"
    "$SHARED/start-prosody.sh" stop
}

run_ours() { # MODE
    local mode=$1 server_args=(--no-tls) args=()
    if [ "$mode" = tls ]; then
        server_args=(--tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem")
        args=(--starttls --ca "$OUT/ca.pem")
    fi
    # One address for every client: the per-address limits are off, and
    # reading is not rate-limited (the comparison measures the server, not
    # its abuse limits).
    target/release/examples/server --listen "127.0.0.1:$OURS_PORT" --memory \
        --users-file "$OUT/users.txt" --max-connections-per-ip 0 --logins-per-ip 0 \
        --read-rate 0 "${server_args[@]}" >"$OUT/ours.out" 2>&1 &
    local pid=$!
    wait_port "$OURS_PORT"
    loadgen "$OURS_PORT" "$pid" "ours-$mode/r$round" "${args[@]}"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

log "start $(date -u +%FT%TZ), $(nproc) CPUs, prosody $(dpkg-query -W -f='${Version}' prosody)"
for round in $(seq 1 "$ROUNDS"); do
    for run in "prosody plain" "ours plain" "prosody tls" "ours tls"; do
        set -- $run
        "run_$1" "$2"
        sleep 2
    done
done
log "done $(date -u +%FT%TZ); results in $LOG"
