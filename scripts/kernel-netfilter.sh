#!/bin/sh
# Keeps kernels off Redis and the rest of the cluster (docs/operations.md, "Kubernetes").
#
# Run once per worker pod by the init container `kernel-netfilter` (k8s/base/worker.yaml), in the
# worker image with NET_ADMIN and NET_RAW; the worker container itself gets neither. The rules
# live in the pod's network namespace, which the worker and its kernels share: a NetworkPolicy
# cannot tell them apart, the packet's owner uid can. Kernels run as uids KERNEL_UID_BASE ..
# KERNEL_UID_BASE + KERNEL_UID_COUNT - 1 (docs/security.md). For them:
#   - loopback stays open (their Jupyter server talks to them over it);
#   - DNS (port 53) stays open;
#   - private, shared and link-local addresses are rejected: Redis, the api, the Kubernetes api,
#     other pods, the cloud metadata service. KERNEL_DENY_EXTRA adds CIDRs (space-separated).
#   - the rest (the internet) is what the pod's egress NetworkPolicy allows.
# Then it proves the rule: as a kernel uid, a TCP connection to REDIS_URL's host must fail, and
# as the worker's uid it must succeed (when Redis is down the proof is skipped with a warning).
# A rule that cannot be installed or does not hold exits non-zero: the pod does not start.
set -eu

first=${KERNEL_UID_BASE:-2000000000}
last=$((first + ${KERNEL_UID_COUNT:-4096} - 1))
chain=KERNELFLEET-KERNELS

install_rules() {  # install_rules <iptables|ip6tables> <cidr...>
  tables=$1
  shift
  # An init container that failed is run again in the same network namespace: start clean.
  "$tables" -w -N "$chain" 2>/dev/null || "$tables" -w -F "$chain"
  "$tables" -w -A "$chain" -o lo -j RETURN
  "$tables" -w -A "$chain" -p udp --dport 53 -j RETURN
  "$tables" -w -A "$chain" -p tcp --dport 53 -j RETURN
  for cidr in "$@"; do
    "$tables" -w -A "$chain" -d "$cidr" -p tcp -j REJECT --reject-with tcp-reset
    "$tables" -w -A "$chain" -d "$cidr" -j REJECT
  done
  jump="OUTPUT -m owner --uid-owner $first-$last -j $chain"
  # shellcheck disable=SC2086 # $jump is several words on purpose
  "$tables" -w -C $jump 2>/dev/null || "$tables" -w -A $jump
}

v4="10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 169.254.0.0/16"
v6="fc00::/7 fe80::/10"
extra4="" extra6=""
for cidr in ${KERNEL_DENY_EXTRA:-}; do
  case $cidr in *:*) extra6="$extra6 $cidr" ;; *) extra4="$extra4 $cidr" ;; esac
done
# shellcheck disable=SC2086 # word splitting of the CIDR lists is intended
install_rules iptables $v4 $extra4
if ip6tables -w -L OUTPUT >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  install_rules ip6tables $v6 $extra6
fi
echo "kernel-netfilter: uids $first-$last reach loopback, DNS and non-private addresses only"

# The proof, against Redis itself.
exec /usr/bin/python3 - "$first" <<'PY'
import os, socket, sys, urllib.parse

url = urllib.parse.urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
host, port = url.hostname or "127.0.0.1", url.port or 6379
address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]

def reaches():
    """True when a TCP connection opens; False when refused (the rule answers with a reset)."""
    try:
        socket.create_connection(address[:2], timeout=5).close()
        return True
    except ConnectionRefusedError:
        return False
    except OSError as error:
        if os.getuid() == 0:
            return False
        sys.exit(f"kernel-netfilter: as a kernel uid, connecting to Redis failed otherwise than refused: {error}")

if not reaches():
    print(f"kernel-netfilter: warning: Redis at {host}:{port} does not answer the worker's uid either; rule not proven")
    sys.exit(0)
uid = int(sys.argv[1])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
if reaches():
    sys.exit(f"kernel-netfilter: kernel uid {uid} still reaches Redis at {host}:{port}")
print(f"kernel-netfilter: proven: kernel uid {uid} cannot reach Redis at {host}:{port}, the worker's uid can")
PY
