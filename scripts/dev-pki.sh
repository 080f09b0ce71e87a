#!/usr/bin/env bash
# A development CA, certificates and passwords for the locked-down bus of
# compose.yaml (deploy/nats/nats.conf and accounts.conf), with openssl.
#
#   scripts/dev-pki.sh [DIR]        # DIR defaults to deploy/dev; files kept if there
#   FORCE=1 scripts/dev-pki.sh      # make everything anew (new CA: every client needs the new files)
#
# It writes, under DIR:
#   ca.key.pem                         the CA's key (never mounted into a container)
#   nats/ca.pem, server.pem, server.key.pem
#                                      mounted into the NATS servers: the CA, the servers'
#                                      certificate (nats-1, nats-2, nats-3, localhost,
#                                      127.0.0.1; server and client use, for routes)
#   worker/ca.pem, worker.pem, worker.key.pem
#                                      mounted into the workers
#   clients/ca.pem, <id>.pem, <id>.key.pem
#                                      for admin, app1, app2, auditor on this host
#   nats.env                           the servers' environment (compose env_file):
#                                      certificate paths and the identities' passwords
#   worker.env                         the workers' TAT_NATS_* (compose env_file)
#   admin.env, app1.env, app2.env, auditor.env
#                                      TAT_NATS_* for attestctl on this host, e.g.
#                                      set -a; . deploy/dev/admin.env; set +a
#
# This is for development: the keys are unencrypted, and those the
# containers read are readable by every user (the worker image runs as an
# unprivileged user). In production, issue certificates from your own CA
# and hand passwords and keys to the processes as your platform keeps
# secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-deploy/dev}"
DAYS="${DAYS:-825}"
IDS="worker admin app1 app2 auditor"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
umask 077

if [ -f "$DIR/ca.key.pem" ] && [ -z "${FORCE:-}" ]; then
  echo "$DIR/ca.key.pem exists: keeping the files under $DIR (FORCE=1 makes them anew)"
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DIR/nats" "$DIR/worker" "$DIR/clients"

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# issue NAME DESTDIR SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
issue() {
  local name="$1" dest="$2" subject="$3" ext="$4"
  ec_key "$dest/$name.key.pem"
  openssl req -new -key "$dest/$name.key.pem" -subj "$subject" -out "$WORK/$name.csr" 2>/dev/null
  printf '%b\n' "$ext" > "$WORK/$name.ext"
  openssl x509 -req -in "$WORK/$name.csr" -CA "$DIR/nats/ca.pem" -CAkey "$DIR/ca.key.pem" -CAcreateserial \
    -CAserial "$WORK/ca.srl" -days "$DAYS" -sha256 -extfile "$WORK/$name.ext" -out "$dest/$name.pem" 2>/dev/null
}

echo "== CA"
ec_key "$DIR/ca.key.pem"
openssl req -x509 -new -key "$DIR/ca.key.pem" -subj "/CN=tat development CA" -days "$DAYS" -sha256 \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$DIR/nats/ca.pem" 2>/dev/null
cp "$DIR/nats/ca.pem" "$DIR/worker/ca.pem"
cp "$DIR/nats/ca.pem" "$DIR/clients/ca.pem"

echo "== NATS servers"
issue server "$DIR/nats" "/CN=tat nats" \
  "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1"

for id in $IDS; do
  echo "== client $id"
  dest="$DIR/clients"
  [ "$id" = worker ] && dest="$DIR/worker"
  issue "$id" "$dest" "/CN=$id" "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
done
# The containers' users (the worker image's is unprivileged) must read
# what is mounted into them; the other keys stay the owner's.
chmod 0755 "$DIR/nats" "$DIR/worker"
chmod 0644 "$DIR"/nats/*.pem "$DIR"/worker/*.pem "$DIR"/clients/*.pem
chmod 0600 "$DIR"/clients/*.key.pem

# Passwords: letters and digits only (the server's configuration reads
# them from the environment as values of its own format).
password() { printf 'p%s' "$(openssl rand -hex 24)"; }
{
  echo "# NATS servers (compose env_file). Made by scripts/dev-pki.sh."
  echo "NATS_SERVER_CERT=/etc/nats/pki/server.pem"
  echo "NATS_SERVER_KEY=/etc/nats/pki/server.key.pem"
  echo "NATS_CA=/etc/nats/pki/ca.pem"
} > "$DIR/nats.env"
for id in $IDS; do
  pw="$(password)"
  upper="$(echo "$id" | tr '[:lower:]' '[:upper:]')"
  echo "NATS_PASSWORD_$upper=$pw" >> "$DIR/nats.env"
  case "$id" in
    worker)
      cat > "$DIR/worker.env" <<EOF
# attestd in compose (env_file). Made by scripts/dev-pki.sh.
TAT_NATS_USER=worker
TAT_NATS_PASSWORD=$pw
TAT_NATS_TLS_CA=/etc/tat/pki/ca.pem
TAT_NATS_TLS_CERT=/etc/tat/pki/worker.pem
TAT_NATS_TLS_KEY=/etc/tat/pki/worker.key.pem
EOF
      ;;
    *)
      {
        echo "# attestctl on this host as $id: set -a; . $DIR/$id.env; set +a"
        echo "TAT_NATS_URL=tls://localhost:4222"
        echo "TAT_NATS_USER=$id"
        echo "TAT_NATS_PASSWORD=$pw"
        echo "TAT_NATS_TLS_CA=$DIR/clients/ca.pem"
        echo "TAT_NATS_TLS_CERT=$DIR/clients/$id.pem"
        echo "TAT_NATS_TLS_KEY=$DIR/clients/$id.key.pem"
        echo "TAT_NATS_INBOX_PREFIX=_INBOX_$id"
        if [ "$id" = auditor ]; then
          echo "TAT_NATS_JS_API_PREFIX='\$JS.TAT.API'"
        fi
      } > "$DIR/$id.env"
      ;;
  esac
done
chmod 0600 "$DIR"/*.env
# compose reads nats.env and worker.env as you, and hands them to the containers.
echo "== written under $DIR: nats/ and nats.env for the servers, worker/ and worker.env for the workers,"
echo "   clients/ and admin.env, app1.env, app2.env, auditor.env for attestctl on this host"
