#!/usr/bin/env bash
# The weft demo: builds a lab host, two networks and an internal one, starts small HTTP servers,
# and shows by real requests what reaches what. Cleans up at the end unless --keep is given.
#   sudo ./scripts/demo.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
[ "$(id -u)" = 0 ] || { echo "the demo needs root (it makes network namespaces); run it with sudo" >&2; exit 1; }
unset NODE_EXTRA_CA_CERTS
./scripts/setup.sh

LAB=demo
WEFT="$ROOT/bin/weft"
ECHO="$ROOT/examples/workloads/http-echo.mjs"
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }
fails=0
check() { # check "what" expected(ok|blocked) command...
  local what=$1 want=$2; shift 2
  if "$@" >/tmp/weft-demo-out.$$ 2>&1; then got=ok; else got=blocked; fi
  if [ "$got" = "$want" ]; then printf '  \033[32m✔\033[0m %-62s %s\n' "$what" "$got"; else printf '  \033[31m✖\033[0m %-62s %s (expected %s)\n' "$what" "$got" "$want"; sed 's/^/      /' /tmp/weft-demo-out.$$; fails=$((fails+1)); fi
  rm -f /tmp/weft-demo-out.$$
}
cleanup() { [ $KEEP = 1 ] || "$WEFT" lab down $LAB >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$WEFT" lab down $LAB >/dev/null 2>&1 || true
bold "1. A lab host: a network namespace with its own weft agent, and an 'outside' world"
"$WEFT" lab up $LAB 2>&1 >/dev/null | sed 's/^/    /'
eval "$("$WEFT" lab env $LAB)"
HOSTIP=$("$WEFT" lab inspect $LAB --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hostAddress"])')
OUTIP=$("$WEFT" lab inspect $LAB --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["outsideAddress"])')

bold "2. Networks: front and back (bridges), vault (internal: no way out)"
show "$WEFT" network create --subnet 10.60.1.0/24 front
show "$WEFT" network create --subnet 10.60.2.0/24 back
show "$WEFT" network create --internal --subnet 10.60.3.0/24 vault
show "$WEFT" network ls

bold "3. Containers: small HTTP servers (examples/workloads/http-echo.mjs)"
"$WEFT" run -d --name web --network front -p 8080:8080 node "$ECHO" 8080 >/dev/null
"$WEFT" run -d --name api --network front node "$ECHO" 8080 >/dev/null
"$WEFT" network connect back api
"$WEFT" run -d --name db --network back node "$ECHO" 8080 >/dev/null
"$WEFT" run -d --name secret --network vault node "$ECHO" 8080 >/dev/null
"$WEFT" run -d --name keeper --network vault node "$ECHO" 8080 >/dev/null
show "$WEFT" ps
sleep 1

ipof() { "$WEFT" inspect "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['networks']['$2']['ipv4'])"; }
nsof() { "$WEFT" inspect "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['netns'])"; }
get() { ip netns exec "$1" busybox wget -q -O - "$2"; }
# a bounded request (busybox wget has no working timeout here)
tget() { timeout 3 ip netns exec "$1" busybox wget -q -O - "$2"; }

bold "4. What reaches what"
check "web -> api on the same network (front)" ok get "$(nsof web)" "http://$(ipof api front):8080/"
check "api -> db: api is on front and back" ok get "$(nsof api)" "http://$(ipof db back):8080/"
check "web -> db: different networks are isolated" blocked tget "$(nsof web)" "http://$(ipof db back):8080/"
check "secret -> keeper inside the internal network" ok get "$(nsof secret)" "http://$(ipof keeper vault):8080/"
ip netns exec "$("$WEFT" lab inspect $LAB --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["outsideNetns"])')" \
  node "$ECHO" 9000 >/dev/null 2>&1 & WORLD=$!
trap 'kill $WORLD 2>/dev/null || true; cleanup' EXIT
sleep 0.5
check "web -> the outside world (masqueraded)" ok get "$(nsof web)" "http://$OUTIP:9000/"
printf '      the outside saw the request come from: %s (the host, not the container)\n' \
  "$(get "$(nsof web)" "http://$OUTIP:9000/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client"])')"
check "secret -> the outside world: internal networks have no way out" blocked tget "$(nsof secret)" "http://$OUTIP:9000/"
check "outside -> web's published port $HOSTIP:8080" ok "$WEFT" lab exec $LAB -- busybox wget -q -O - "http://$HOSTIP:8080/"
check "host -> 127.0.0.1:8080 (published port from the host itself)" ok "$WEFT" lab exec $LAB --host -- busybox wget -q -O - http://127.0.0.1:8080/
check "db -> web through the host address (hairpin)" ok get "$(nsof db)" "http://$HOSTIP:8080/"
OUTNS=$("$WEFT" lab inspect $LAB --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["outsideNetns"])')
ip -n "$OUTNS" route replace 10.60.0.0/16 via "$HOSTIP"   # a router outside that knows the way in
check "outside -> db directly (routed to the host): not published, refused" blocked tget "$OUTNS" "http://$(ipof db back):8080/"
kill $WORLD 2>/dev/null || true

bold "5. Nothing leaked"
show "$WEFT" system check

if [ $fails -gt 0 ]; then echo; echo "$fails check(s) failed"; exit 1; fi
if [ $KEEP = 1 ]; then
  bold "The lab is still running. Explore it:"
  cat <<HELP
    eval "\$($WEFT lab env $LAB)"          # point the CLI at the lab's agent
    $WEFT ps; $WEFT network inspect front
    $WEFT exec web ip addr                  # inside a container
    $WEFT lab exec $LAB -- busybox wget -q -O - http://$HOSTIP:8080/   # from the outside
    $WEFT lab down $LAB                     # remove every trace
HELP
else
  bold "Cleaning up (run with --keep to explore the lab afterwards)"
fi
echo "all checks passed"
