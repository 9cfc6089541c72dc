#!/usr/bin/env bash
# End-to-end check of the Docker cluster: builds the image and the certificates, starts the three
# members with docker compose, drives them with etcdctl over mutual TLS, stops the leader, checks
# that the other two still serve writes and linearizable reads, restarts it and checks that it
# catches up. Always removes its containers, network and volumes. Exits non-zero on any failure.
# Usage: docker/smoke.sh     (needs docker, docker compose or docker-compose, etcdctl 3.4, cargo)
#        KVD_SMOKE_STOP=kill docker/smoke.sh   kills the leader (SIGKILL) instead of stopping it
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
certs="$here/certs"
image="${KVD_IMAGE:-kvd:local}"
export KVD_IMAGE="$image" ETCDCTL_API=3
# A project name of its own, so containers, network and volumes never clash with anything else.
project="kvd-smoke-$(date +%s)-$$"
network="${project}_kvd"
members=(m1 m2 m3)
stop_how="${KVD_SMOKE_STOP:-stop}"
case "$stop_how" in stop | kill) ;; *) echo "smoke.sh: KVD_SMOKE_STOP must be stop or kill" >&2; exit 2 ;; esac
declare -A port=([m1]="${KVD_M1_PORT:-23791}" [m2]="${KVD_M2_PORT:-23792}" [m3]="${KVD_M3_PORT:-23793}")

# --- helpers ---------------------------------------------------------------------------------

t0="$(date +%s%N)"
# Milliseconds since the start.
elapsed_ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
# Prints a step with the time since the start.
step() {
  local ms
  ms="$(elapsed_ms)"
  printf '\n== [%4d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}
fail() {
  echo "smoke.sh: FAILED: $*" >&2
  exit 1
}

# docker compose v2 if present, else docker-compose v1.
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v etcdctl >/dev/null || fail "etcdctl is not installed"
compose() { "${compose_cmd[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }

# The host URL of a member's published client port.
url() { echo "https://127.0.0.1:${port[$1]}"; }
# etcdctl on the host, with the client certificate.
ectl() {
  etcdctl --cacert="$certs/ca.pem" --cert="$certs/root.pem" --key="$certs/root-key.pem" \
    --dial-timeout=3s --command-timeout=5s "$@"
}
# The host's etcdctl run inside the compose network (it needs only libc and the loader, which the
# image has), for commands that dial the advertised URLs https://mN:2379 the host cannot resolve.
ectl_in_network() {
  docker run --rm --network "$network" -e ETCDCTL_API=3 \
    -v "$(command -v etcdctl)":/usr/local/bin/etcdctl:ro \
    -v "$certs/ca.pem":/certs/ca.pem:ro -v "$certs/root.pem":/certs/root.pem:ro \
    -v "$certs/root-key.pem":/certs/root-key.pem:ro \
    --entrypoint /usr/local/bin/etcdctl "$image" \
    --cacert=/certs/ca.pem --cert=/certs/root.pem --key=/certs/root-key.pem \
    --dial-timeout=3s --command-timeout=5s "$@"
}
# Runs "$@" once a second until it succeeds; fails after LIMIT seconds with its last output.
retry() {
  local limit="$1" what="$2" start out
  shift 2
  start="$(elapsed_ms)"
  until out="$("$@" 2>&1)"; do
    if (($(elapsed_ms) - start >= limit * 1000)); then
      echo "$out" >&2
      fail "$what: not done within ${limit}s"
    fi
    sleep 1
  done
}
# Prints endpoint status --cluster as a table; fails unless it has a row for each of the three.
cluster_status() {
  local table rows
  table="$(ectl_in_network --endpoints=https://m1:2379 endpoint status --cluster -w table)" ||
    fail "endpoint status --cluster failed"
  echo "$table"
  rows="$(grep -c '^| https://m[123]:2379 ' <<<"$table" || true)"
  [ "$rows" -eq 3 ] || fail "endpoint status --cluster shows $rows members, expected 3"
}
# Succeeds when the key's value read through ENDPOINT is WANT (extra etcdctl flags after WANT).
value_is() {
  local endpoint="$1" key="$2" want="$3" got
  shift 3
  got="$(ectl --endpoints="$endpoint" get "$key" --print-value-only "$@")" || return 1
  [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}
# Fails unless the key's value read through MEMBER is WANT (extra etcdctl flags after WANT).
check_value() {
  local member="$1" key="$2" want="$3"
  shift 3
  value_is "$(url "$member")" "$key" "$want" "$@" || fail "get $key through $member: expected '$want'"
  echo "get $key through $member ${*:-(linearizable)}: $want"
}
# Succeeds when every container of the project is running.
all_running() {
  local id
  for id in $(compose ps -q); do
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] || return 1
  done
}
# The member that endpoint status calls the leader, among the given members.
leader_of() {
  local m
  for m in "$@"; do
    if ectl --endpoints="$(url "$m")" endpoint status -w simple 2>/dev/null |
      awk -F', ' '$5 == "true" { found = 1 } END { exit !found }'; then
      echo "$m"
      return 0
    fi
  done
  return 1
}

# Always clean up; on failure show the members' last log lines first.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "--- last log lines of the members ---" >&2
    compose logs --no-color --tail=40 >&2 2>&1 || true
  fi
  echo
  echo "== cleaning up: ${compose_cmd[*]} -p $project down -v"
  compose down -v --remove-orphans >/dev/null 2>&1 || echo "smoke.sh: warning: down -v failed" >&2
  if [ "$rc" -eq 0 ]; then
    echo "smoke.sh: PASSED in $(($(elapsed_ms) / 1000))s"
  else
    echo "smoke.sh: FAILED (exit $rc)" >&2
  fi
  exit "$rc"
}

# --- build and start -------------------------------------------------------------------------

step "build the image ($image)"
"$here/build-image.sh" || fail "building the image failed (output above)"

step "make the certificates"
"$here/certs.sh" || fail "making the certificates failed (output above)"

trap cleanup EXIT
trap 'exit 130' INT TERM

step "start the cluster: ${compose_cmd[*]} -p $project up -d"
compose up -d || fail "${compose_cmd[*]} up failed (output above)"

# Poll until all three answer endpoint health over mutual TLS (at most 60 s).
step "wait until all three members are healthy"
all="$(url m1),$(url m2),$(url m3)"
health_start="$(elapsed_ms)"
until ectl --endpoints="$all" endpoint health >/dev/null 2>&1; do
  all_running || fail "a member container stopped during start-up"
  (($(elapsed_ms) - health_start < 60000)) || {
    ectl --endpoints="$all" endpoint health || true
    fail "the members were not all healthy within 60s"
  }
  sleep 1
done
ectl --endpoints="$all" endpoint health
echo "healthy after $(($(elapsed_ms) - health_start)) ms"

# kvd warns about ETCD_* variables it does not know or ignores: there must be none.
if compose logs --no-color 2>&1 | grep -F ' WARN kvd: '; then
  fail "kvd warned about its configuration (lines above)"
fi
echo "no configuration warnings in the members' logs"

# --- replication -----------------------------------------------------------------------------

step "put/get through different members"
ectl --endpoints="$(url m1)" put smoke/a one
check_value m2 smoke/a one
check_value m3 smoke/a one
ectl --endpoints="$(url m3)" put smoke/b two
check_value m1 smoke/b two
check_value m2 smoke/b two --consistency=s

step "member list"
ectl --endpoints="$all" member list -w table
started="$(ectl --endpoints="$all" member list -w simple | grep -c ', started, ' || true)"
[ "$started" -eq 3 ] || fail "member list shows $started started members, expected 3"

step "endpoint status --cluster (etcdctl inside the compose network)"
cluster_status

# --- lose the leader -------------------------------------------------------------------------

leader="$(leader_of "${members[@]}")" || fail "no member reports itself as leader"
survivors=()
for m in "${members[@]}"; do [ "$m" = "$leader" ] || survivors+=("$m"); done
a="${survivors[0]}" b="${survivors[1]}"

# docker stop (SIGTERM: kvd hands leadership over first) or, with KVD_SMOKE_STOP=kill, SIGKILL.
step "${stop_how} the leader, $leader"
compose "$stop_how" "$leader" || fail "${stop_how}ing $leader failed"
echo "$leader exited with code $(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "$leader")")"

step "write through $a and read linearizably through $b without $leader"
stop_ms="$(elapsed_ms)"
retry 30 "put through $a after stopping $leader" ectl --endpoints="$(url "$a")" put smoke/c three
echo "first write after the stop succeeded after $(($(elapsed_ms) - stop_ms)) ms"
check_value "$b" smoke/c three
ectl --endpoints="$(url "$b")" put smoke/d four
check_value "$a" smoke/d four
new_leader="$(leader_of "$a" "$b")" || fail "neither $a nor $b reports itself as leader"
echo "new leader: $new_leader"
ectl --endpoints="$(url "$a"),$(url "$b")" endpoint status -w table

# --- bring it back ---------------------------------------------------------------------------

step "start $leader again"
compose start "$leader" || fail "starting $leader failed"
back_ms="$(elapsed_ms)"
retry 60 "$leader healthy again" ectl --endpoints="$(url "$leader")" endpoint health
echo "$leader healthy after $(($(elapsed_ms) - back_ms)) ms"
# Its local (serializable) read must reach the value written while it was down.
retry 30 "$leader catching up" value_is "$(url "$leader")" smoke/d four --consistency=s
echo "$leader caught up after $(($(elapsed_ms) - back_ms)) ms"
check_value "$leader" smoke/c three --consistency=s
check_value "$leader" smoke/d four --consistency=s
ectl --endpoints="$(url "$leader")" put smoke/e five
check_value "$a" smoke/e five

step "endpoint status --cluster after the restart"
cluster_status
