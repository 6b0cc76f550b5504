#!/usr/bin/env bash
# `make run`: start `google-video dev` in the background, run the demo client against it,
# stop the service again (KEEP=1 leaves it running).
set -euo pipefail
umask 077  # the data dir, its database and the log are the owner's alone
host=$1 port=$2 data_dir=$3 admin_key=$4
bin=.venv/bin
# A port something else holds would send the demo to that server, "succeeding" against it.
if ! "$bin/python" -c 'import socket, sys; socket.create_server((sys.argv[1], int(sys.argv[2])))' \
    "$host" "$port" 2>/dev/null; then
  echo "make run: $host:$port is taken by another process; free it or choose PORT=…" >&2
  exit 1
fi
mkdir -p "$data_dir"
log="$data_dir/dev.log"
GOOGLE_VIDEO_ADMIN_KEY="$admin_key" "$bin/google-video" dev --host "$host" --port "$port" --data-dir "$data_dir" >"$log" 2>&1 &
dev_pid=$!
stop() {
  if [ "${KEEP:-0}" = "1" ]; then
    echo "service still running (pid $dev_pid) at http://$host:$port; admin key: $admin_key"
  else
    kill -TERM "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null || true
  fi
}
trap stop EXIT
echo "starting google-video dev on http://$host:$port (log: $log)"
"$bin/python" -m cli.demo --base-url "http://$host:$port" --admin-key "$admin_key" --data-dir "$data_dir"
