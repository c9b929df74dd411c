#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the storage tests and print its URL on stdout.
#
#   export TRANSFEROPS_TEST_PG_URL=$(scripts/start_postgres.sh)
#   ... run tests ...
#   <the stop.sh path printed on stderr>   # stops the cluster and deletes its files
#
# Installs Debian's `postgresql` package if no server binaries are found, creates a cluster in a
# fresh /tmp directory owned by the `postgres` user (when run as root), starts it on a free
# loopback port with trust auth, creates the database `transferops_test`, and prints
# postgresql://postgres@127.0.0.1:PORT/transferops_test. Everything else goes to stderr.
set -euo pipefail

log() { echo "start_postgres: $*" >&2; }

find_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "${BINDIR}" || ! -x "${BINDIR}/initdb" ]]; then
  log "no PostgreSQL server found; installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)"
fi
[[ -x "${BINDIR}/initdb" ]] || { log "initdb not found under ${BINDIR}"; exit 1; }

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
DIR="$(mktemp -d /tmp/transferops-pg.XXXXXX)"
DB="${TRANSFEROPS_PG_DB:-transferops_test}"

as_pg() {
  if [[ "$(id -u)" == "0" ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "${DIR}" --shell /bin/bash postgres
    chown -R postgres "${DIR}"
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

log "cluster in ${DIR} on port ${PORT} (binaries ${BINDIR})"
as_pg "'${BINDIR}/initdb' -D '${DIR}/data' -A trust -U postgres -E UTF8 --no-locale" >"${DIR}/initdb.log" 2>&1 \
  || { cat "${DIR}/initdb.log" >&2; exit 1; }
as_pg "'${BINDIR}/pg_ctl' -D '${DIR}/data' -l '${DIR}/server.log' -w -t 60 \
  -o \"-p ${PORT} -k ${DIR} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100\" start" >&2 \
  || { cat "${DIR}/server.log" >&2; exit 1; }
as_pg "'${BINDIR}/createdb' -h 127.0.0.1 -p ${PORT} -U postgres '${DB}'" >&2

cat > "${DIR}/stop.sh" <<STOP
#!/usr/bin/env bash
# Stop this throwaway cluster and delete its files.
if [[ "\$(id -u)" == "0" ]]; then su postgres -s /bin/bash -c "'${BINDIR}/pg_ctl' -D '${DIR}/data' -m fast stop";
else '${BINDIR}/pg_ctl' -D '${DIR}/data' -m fast stop; fi
rm -rf '${DIR}'
STOP
chmod +x "${DIR}/stop.sh"
log "stop it with: ${DIR}/stop.sh"
echo "postgresql://postgres@127.0.0.1:${PORT}/${DB}"
