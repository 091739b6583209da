#!/usr/bin/env bash
# The weft demo: brings up the example application (examples/app/compose.yaml: a web front, two
# API replicas and a store, on a public and an internal network) in a lab host, and proves by real
# requests that names, isolation and the published port work. Cleans up at the end unless --keep.
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
APP="$ROOT/examples/app/compose.yaml"
ECHO="$ROOT/examples/workloads/http-echo.mjs"
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }
fails=0
check() { # check "what" expected(ok|blocked) command...
  local what=$1 want=$2; shift 2
  if "$@" >/tmp/weft-demo-out.$$ 2>&1; then got=ok; else got=blocked; fi
  if [ "$got" = "$want" ]; then printf '  \033[32m✔\033[0m %-66s %s\n' "$what" "$got"; else printf '  \033[31m✖\033[0m %-66s %s (expected %s)\n' "$what" "$got" "$want"; sed 's/^/      /' /tmp/weft-demo-out.$$; fails=$((fails+1)); fi
  rm -f /tmp/weft-demo-out.$$
}
WORLD=
cleanup() {
  [ -n "$WORLD" ] && kill "$WORLD" 2>/dev/null || true
  [ $KEEP = 1 ] || "$WEFT" lab down $LAB >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$WEFT" lab down $LAB >/dev/null 2>&1 || true
bold "1. A lab host: a network namespace with its own weft agent, and an 'outside' world"
"$WEFT" lab up $LAB 2>&1 >/dev/null | sed 's/^/    /'
eval "$("$WEFT" lab env $LAB)"
labjson() { "$WEFT" lab inspect $LAB --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
HOSTIP=$(labjson hostAddress)
OUTIP=$(labjson outsideAddress)
OUTNS=$(labjson outsideNetns)

bold "2. The application: weft up -f examples/app/compose.yaml"
show "$WEFT" up -d -f "$APP"
show "$WEFT" compose -f "$APP" ps
show "$WEFT" network ls

ipof() { "$WEFT" inspect "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['networks']['$2']['ipv4'])"; }
in_() { local c=$1; shift; "$WEFT" exec "$c" "$@"; }
# a bounded request (busybox wget has no working timeout here)
tget() { local c=$1; shift; timeout 3 "$WEFT" exec "$c" busybox wget -q -O - "$@"; }
outside() { "$WEFT" lab exec $LAB -- "$@"; }
resolves() { local c=$1 name=$2; [ -n "$(in_ "$c" dig +short "$name")" ]; }
for _ in $(seq 50); do outside busybox wget -q -O - "http://$HOSTIP:8080/" >/dev/null 2>&1 && break; sleep 0.2; done

bold "3. Names (weft's embedded DNS, at each network's gateway)"
printf '    web asks for api:   %s\n' "$(in_ shop-web-1 dig +short api | tr '\n' ' ')"
printf '    api asks for store: %s\n' "$(in_ shop-api-1 dig +short store | tr '\n' ' ')"
check "web resolves api to its virtual IP (one address, in 10.96.0.0/16)" ok sh -c "\"$WEFT\" exec shop-web-1 dig +short api | grep -qx '10\.96\.[0-9.]*'"
check "tasks.api lists the three healthy replicas" ok test "$(in_ shop-web-1 dig +short tasks.api | wc -l)" = 3
check "api resolves store (they share the backend network)" ok resolves shop-api-1 store
check "web cannot resolve store: they share no network" blocked resolves shop-web-1 store
check "store resolves the api replicas by the alias counter" ok resolves shop-store-1 counter

bold "4. The published port and the application's own requests"
check "outside -> web's published port $HOSTIP:8080" ok outside busybox wget -q -O - "http://$HOSTIP:8080/"
check "outside -> /api/hit: web -> api -> store, by name" ok outside busybox wget -q -O - "http://$HOSTIP:8080/api/hit"
served=$(for _ in 1 2 3 4 5 6; do outside busybox wget -q -O - "http://$HOSTIP:8080/api/hit"; done | python3 -c 'import json,sys; print(len({json.loads(l)["served_by"] for l in sys.stdin}))')
check "the three API replicas share the requests (round robin through the VIP)" ok test "$served" = 3
check "host -> 127.0.0.1:8080 (a published port from the host itself)" ok "$WEFT" lab exec $LAB --host -- busybox wget -q -O - http://127.0.0.1:8080/
check "api -> the host's address:8080 (hairpin)" ok tget shop-api-1 "http://$HOSTIP:8080/"

bold "5. Isolation"
ip netns exec "$OUTNS" node "$ECHO" 9000 >/dev/null 2>&1 & WORLD=$!
for _ in $(seq 50); do ip netns exec "$OUTNS" busybox wget -q -O - "http://$OUTIP:9000/" >/dev/null 2>&1 && break; sleep 0.1; done
check "web -> api by address (they share the public network)" ok tget shop-web-1 "http://$(ipof shop-api-1 shop_public):8080/health"
check "web -> store by address: no shared network, no route through" blocked tget shop-web-1 "http://$(ipof shop-store-1 shop_backend):7000/kv/hits"
check "api -> the outside world (masqueraded)" ok tget shop-api-1 "http://$OUTIP:9000/"
printf '      the outside saw the request come from: %s (the host, not the container)\n' \
  "$(tget shop-api-1 "http://$OUTIP:9000/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client"])')"
check "store -> the outside world: the backend network is internal" blocked tget shop-store-1 "http://$OUTIP:9000/"
ip -n "$OUTNS" route replace 10.70.0.0/16 via "$HOSTIP"   # a router outside that knows the way in
check "outside -> store directly (routed to the host): not published" blocked timeout 3 ip netns exec "$OUTNS" busybox wget -q -O - "http://$(ipof shop-store-1 shop_backend):7000/kv/hits"
check "outside -> the embedded DNS at a gateway: never answered" blocked sh -c "ip netns exec $OUTNS dig @10.70.1.1 +time=1 +tries=1 web | grep -q 'status: NOERROR'"
kill "$WORLD" 2>/dev/null || true; WORLD=

bold "6. Network policy (Kubernetes NetworkPolicy from the compose file's x-weft.policies)"
show "$WEFT" policy ls
"$WEFT" run -d --name intruder --network shop_public --project shop -l role=intruder node "$ECHO" 9100 >/dev/null
check "web -> api:8080 (allowed by api-from-web)" ok tget shop-web-1 "http://$(ipof shop-api-1 shop_public):8080/health"
check "intruder (same project and network, not web) -> api:8080" blocked tget intruder "http://$(ipof shop-api-1 shop_public):8080/health"
check "api -> intruder: api's egress is not isolated" ok sh -c "for i in \$(seq 50); do \"$WEFT\" exec shop-api-1 busybox wget -q -O - http://$(ipof intruder shop_public):9100/ && exit 0; sleep 0.1; done; exit 1"
show "$WEFT" policy check intruder shop-api-1:8080
check "policy matrix --probe: the kernel agrees with the model in every cell" ok "$WEFT" policy matrix --probe -n shop --port 8080/tcp --port 7000/tcp --timeout 500
show "$WEFT" policy matrix -n shop --port 8080/tcp --port 7000/tcp
"$WEFT" rm -f intruder >/dev/null

bold "7. Nothing leaked"
show "$WEFT" system check

if [ $fails -gt 0 ]; then echo; echo "$fails check(s) failed"; exit 1; fi
if [ $KEEP = 1 ]; then
  bold "The application is still running in lab $LAB. Explore it:"
  cat <<HELP
    eval "\$($WEFT lab env $LAB)"                    # point the CLI at the lab's agent
    $WEFT compose -f $APP ps
    $WEFT compose -f $APP logs
    $WEFT exec shop-web-1 dig api                     # names, from inside a container
    $WEFT lab exec $LAB -- busybox wget -q -O - http://$HOSTIP:8080/api/hit   # from the outside
    $WEFT down -f $APP                                # stop and remove the application
    $WEFT lab down $LAB                               # remove every trace of the lab
HELP
else
  bold "Cleaning up (run with --keep to explore the application afterwards)"
  show "$WEFT" down -f "$APP"
fi
echo "all checks passed"
