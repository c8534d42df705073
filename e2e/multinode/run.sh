#!/usr/bin/env bash
# Two `sealpost serve` nodes on one PostgreSQL database behind nginx (round robin, TLS at the
# balancer, `tls = "off"` on the nodes). Checks that the nodes are stateless: opens, sessions,
# lockouts and the queue work across both, and killing a node loses nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pg_url_base="${SEALPOST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! command -v nginx >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
(cd "$root" && cargo build -q -p sealpost)

work="$(mktemp -d)"
db="sp_multinode_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  psql "$pg_url_base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$pg_url_base" -qc "CREATE DATABASE $db" >/dev/null
db_url="${pg_url_base%/*}/$db"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lb_port="$(free_port)"; sink_port="$(free_port)"
master_key="$(head -c 32 /dev/urandom | base64)"

python3 "$root/e2e/lib/smtpsink.py" --port "$sink_port" --dir "$work/sink" --delay 0.2 &
pids+=($!)

start_node() { # name smtp_port web_port
  cat > "$work/$1.toml" <<TOML
data_dir = "$work/$1"
node_name = "node-$1"
hostname = "gw.test"
[database]
url = "$db_url"
[smtp]
listen = "127.0.0.1:$2"
[delivery]
relay = "smtp://127.0.0.1:$sink_port"
retry_base_secs = 1
retry_max_secs = 2
lease_secs = 15
concurrency = 8
[web]
listen = "127.0.0.1:$3"
public_url = "https://127.0.0.1:$lb_port"
tls = "off"
[policy]
internal_domains = ["bank.example"]
TOML
  SEALPOST_KEYS__MASTER_KEY="$master_key" "$root/target/debug/sealpost" serve --config "$work/$1.toml" >>"$work/$1.log" 2>&1 &
  echo $!
}
a_smtp="$(free_port)"; a_web="$(free_port)"; b_smtp="$(free_port)"; b_web="$(free_port)"
pid_a="$(start_node a "$a_smtp" "$a_web")"; pids+=("$pid_a")
sleep 1   # let node A run the migrations first (B would wait on the lock anyway)
pid_b="$(start_node b "$b_smtp" "$b_web")"; pids+=("$pid_b")

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -keyout "$work/lb.key" -out "$work/lb.crt" >/dev/null 2>&1
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  upstream sealpost { server 127.0.0.1:$a_web max_fails=0; server 127.0.0.1:$b_web max_fails=0; }
  server {
    listen 127.0.0.1:$lb_port ssl;
    ssl_certificate $work/lb.crt;
    ssl_certificate_key $work/lb.key;
    client_max_body_size 100m;
    location / {
      proxy_pass http://sealpost;
      proxy_set_header Host \$host:\$server_port;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      add_header X-Upstream \$upstream_addr always;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf"

for port in "$a_web" "$b_web"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
done

# The forced first-login password change is the portal's own subject (tests/portal.rs); here the
# generated password is used directly. Set with the settings CLI as an operator would (validated
# and audited); both nodes pick the change up within seconds.
SEALPOST_KEYS__MASTER_KEY="$master_key" "$root/target/debug/sealpost" settings set \
  security.force_password_change false --config "$work/a.toml" >/dev/null
sleep 4

export LB="https://127.0.0.1:$lb_port" A_SMTP="$a_smtp" B_SMTP="$b_smtp" SINK_DIR="$work/sink" \
  A_WEB="127.0.0.1:$a_web" B_WEB="127.0.0.1:$b_web" A_PID="$pid_a" A_LOG="$work/a.log" B_LOG="$work/b.log"
python3 "$here/check.py"
