#!/usr/bin/env bash
# Make sure what the test suite talks to is installed and answering:
# PostgreSQL on 127.0.0.1:5432 (user postgres), Redis on 127.0.0.1:6379,
# Tesseract (kor+jpn+eng) for OCR tests and Debian's Chromium for the browser test.
# Installs from Debian's packages only what is missing; starts what is down.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

# --- PostgreSQL ------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-client
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    # A throw-away test server: the local superuser connects over loopback without a password.
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "$hba"
  done
fi
if ! pg_up; then
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }

# --- Redis -----------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  log "installing Redis"
  apt_install redis-server
fi
if ! redis_up; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi
redis_up || { log "Redis does not answer on 127.0.0.1:6379"; exit 1; }

# --- OCR and the browser -----------------------------------------------------------
missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
if command -v tesseract >/dev/null 2>&1; then
  langs=$(tesseract --list-langs 2>/dev/null || true)
  grep -qx kor <<<"$langs" || missing+=(tesseract-ocr-kor)
  grep -qx jpn <<<"$langs" || missing+=(tesseract-ocr-jpn)
else
  missing+=(tesseract-ocr-kor tesseract-ocr-jpn tesseract-ocr-eng)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# (not `fc-list | grep -q`: under pipefail, grep leaving at the first match fails fc-list with SIGPIPE)
grep -qi "noto sans cjk" <<<"$(fc-list 2>/dev/null)" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
log "PostgreSQL, Redis, Tesseract and Chromium are ready"
