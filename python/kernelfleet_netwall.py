"""Keep kernels off the host's own services: nftables rules for the kernels' uid range.

Kernels run as uids of their own (python/kernelfleet_sandbox.py). For packets those uids send,
one nftables table (`inet kernelfleet_walls`) allows:

- TCP packets other than the opening SYN: replies on connections others opened to the kernel
  (the Jupyter server talks to its kernel over loopback: the kernel only ever accepts those
  connections), and the rest of connections it was allowed to open;
- with `network: public`, DNS to the resolvers of /etc/resolv.conf, and new connections to
  public addresses;

and refuses everything else: any address of this machine (loopback and its own addresses:
Redis, the Jupyter servers, metrics, the api, anything listening here), private, shared,
link-local and multicast ranges, the networks the machine's interfaces are on, and `deny_extra`.
With `network: none` every new connection is refused. A refused TCP connection answers at once
(connection refused); other packets fail with EPERM.

    kernelfleet_netwall.py hold '<settings json>'   (the worker; see below)
    kernelfleet_netwall.py install                  (an init container; settings from KERNEL_*)
    kernelfleet_netwall.py remove

`hold` installs the table, prints one JSON line ({"ok": true, ...} or {"ok": false, "error":
...}), and keeps it while its stdin stays open (the worker holds the pipe; however the worker
ends, the pipe closes). The table belongs to the network namespace, so its bookkeeping lives in
one place per host (STATE_DIR, /run/kernelfleet: a container has its own) whatever sandbox
folder each worker uses. Workers of one host share the table: each holds a shared lock on
STATE_DIR/netwall.holders for as long as it runs, and the last one to leave removes the table.
Install and removal take STATE_DIR/netwall.lock, so a worker starting while the last one leaves
never loses its rules. Workers of one host must agree on the settings: a worker whose settings
differ from those of the table's current holders is refused.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import signal
import subprocess
import sys
from typing import Any

TABLE = "kernelfleet_walls"
STATE_DIR = "/run/kernelfleet"
PRIVATE_V4 = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
]
PRIVATE_V6 = ["::/127", "::ffff:0:0/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "ff00::/8"]


def on_link_networks() -> tuple[list[str], list[str]]:
    """The networks this machine's interfaces are on (routes without a gateway), but loopback."""
    v4: list[str] = []
    v6: list[str] = []
    try:
        with open("/proc/net/route", encoding="ascii") as routes:
            for line in list(routes)[1:]:
                fields = line.split()
                if len(fields) < 8 or fields[0] == "lo" or int(fields[2], 16) != 0:
                    continue
                dest, mask = (ipaddress.IPv4Address(int(f, 16).to_bytes(4, "little")) for f in (fields[1], fields[7]))
                if int(mask):
                    v4.append(str(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
    except OSError:
        pass
    try:
        with open("/proc/net/ipv6_route", encoding="ascii") as routes:
            for line in routes:
                fields = line.split()
                if len(fields) < 10 or fields[9] == "lo" or int(fields[4], 16) != 0 or int(fields[1], 16) == 0:
                    continue
                network = ipaddress.IPv6Network((int(fields[0], 16), int(fields[1], 16)), strict=False)
                if not network.is_multicast and not network.is_link_local:
                    v6.append(str(network))
    except OSError:
        pass
    return v4, v6


def resolvers() -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as conf:
            for line in conf:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    try:
                        address = ipaddress.ip_address(fields[1].split("%")[0])
                    except ValueError:
                        continue
                    (v4 if address.version == 4 else v6).append(str(address))
    except OSError:
        pass
    return v4, v6


def ruleset(settings: dict[str, Any]) -> str:
    """The nft script that replaces the table in one transaction."""
    first = int(settings["uid_base"])
    last = first + int(settings["uid_count"]) - 1
    network = settings.get("network", "public")
    extra = [ipaddress.ip_network(cidr, strict=False) for cidr in settings.get("deny_extra", [])]
    link4, link6 = on_link_networks()
    deny4 = sorted(set(PRIVATE_V4 + link4 + [str(n) for n in extra if n.version == 4]))
    deny6 = sorted(set(PRIVATE_V6 + link6 + [str(n) for n in extra if n.version == 6]))
    dns4, dns6 = resolvers()

    def refuse(match: str) -> list[str]:
        return [f"{match} meta l4proto tcp reject with tcp reset", f"{match} reject with icmpx type admin-prohibited"]

    rules = [
        # Only the first packet of a TCP connection is judged: the rest of a connection the
        # kernel did not open (the Jupyter server's to it) or was allowed to open passes. No
        # connection tracking, so the host's other traffic pays nothing for it.
        "meta l4proto tcp tcp flags & (syn | ack) != syn accept",
    ]
    if network == "public":
        if dns4:
            rules.append(f"ip daddr {{ {', '.join(dns4)} }} meta l4proto {{ tcp, udp }} th dport 53 accept")
        if dns6:
            rules.append(f"ip6 daddr {{ {', '.join(dns6)} }} meta l4proto {{ tcp, udp }} th dport 53 accept")
        rules += refuse("fib daddr type local")
        rules += refuse('oifname "lo"')
        rules += refuse(f"ip daddr {{ {', '.join(deny4)} }}")
        rules += refuse(f"ip6 daddr {{ {', '.join(deny6)} }}")
    else:
        rules += ["meta l4proto tcp reject with tcp reset", "reject with icmpx type admin-prohibited"]
    body = "\n".join(f"    {rule}" for rule in rules)
    # Only packets of a kernel's socket are judged: the host's own traffic, and packets the
    # kernel sends without a socket (resets, ICMP errors), pass the output chain untouched.
    # They are judged at priority mangle (-150), before destination NAT (-100): by where the
    # kernel sent them. Docker's embedded DNS is 127.0.0.11:53 DNAT'd to a random port of the
    # daemon in the container's network namespace; judged after the NAT, DNS in a compose
    # network would be refused as loopback traffic.
    return (
        f"table inet {TABLE}\n"
        f"delete table inet {TABLE}\n"
        f"table inet {TABLE} {{\n"
        f"  chain kernels {{\n{body}\n  }}\n"
        f"  chain output {{\n    type filter hook output priority mangle; policy accept;\n    meta skuid {first}-{last} jump kernels\n  }}\n"
        f"}}\n"
    )


def nft(script: str) -> None:
    done = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nft failed: {(done.stderr or done.stdout).strip()[:500]}")


def install(settings: dict[str, Any]) -> None:
    nft(ruleset(settings))


def remove() -> None:
    nft(f"table inet {TABLE}\ndelete table inet {TABLE}\n")


def settings_from_env() -> dict[str, Any]:
    return {
        "uid_base": int(os.environ.get("KERNEL_UID_BASE", "2000000000")),
        "uid_count": int(os.environ.get("KERNEL_UID_COUNT", "4096")),
        "network": os.environ.get("KERNEL_NETWORK", "public"),
        "deny_extra": os.environ.get("KERNEL_DENY_EXTRA", "").split(),
    }


def hold(settings: dict[str, Any]) -> None:
    lock_dir = STATE_DIR
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    wanted = {key: settings.get(key) for key in ("uid_base", "uid_count", "network", "deny_extra")}
    state = os.path.join(lock_dir, "netwall.json")
    transition = os.open(os.path.join(lock_dir, "netwall.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    holders_path = os.path.join(lock_dir, "netwall.holders")
    fcntl.flock(transition, fcntl.LOCK_EX)
    try:
        others = held_by_others(holders_path)
        if others and os.path.exists(state):
            with open(state, encoding="utf-8") as current:
                theirs = json.load(current)
            if theirs != wanted:
                raise Conflict(f"the workers of this host run with other kernel network settings: {json.dumps(theirs)}")
        install(settings)
        with open(state, "w", encoding="utf-8") as current:
            json.dump(wanted, current)
        holders = os.open(holders_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(holders, fcntl.LOCK_SH)
    finally:
        fcntl.flock(transition, fcntl.LOCK_UN)
    print(json.dumps({"ok": True, "table": f"inet {TABLE}"}), flush=True)
    wait_for_release()
    fcntl.flock(transition, fcntl.LOCK_EX)
    os.close(holders)
    if not held_by_others(holders_path):
        remove()


class Conflict(RuntimeError):
    """The host's running workers hold the table with other settings."""


class Released(Exception):
    """Raised by the signal handlers to end the wait."""


def wait_for_release() -> None:
    """Until stdin ends (the worker let go or is gone) or a signal asks us to stop (a terminal's
    Ctrl-C or a `timeout` reaches the worker's whole process group)."""

    def on_signal(_signum: int, _frame: Any) -> None:
        raise Released

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        while os.read(0, 4096):
            pass
    except (OSError, Released):
        pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def held_by_others(holders_path: str) -> bool:
    """Whether another process holds the shared lock of the table's holders."""
    fd = os.open(holders_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if command == "hold" and len(sys.argv) == 3:
            hold(json.loads(sys.argv[2]))
        elif command == "install":
            install(settings_from_env())
            print(f"kernelfleet_netwall: table inet {TABLE} installed", flush=True)
        elif command == "remove":
            remove()
        elif command == "print":
            print(ruleset(json.loads(sys.argv[2]) if len(sys.argv) == 3 else settings_from_env()), end="")
        else:
            sys.exit("usage: kernelfleet_netwall.py hold '<settings json>' | install | remove | print ['<settings json>']")
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        if command == "hold":
            print(json.dumps({"ok": False, "error": str(error), "conflict": isinstance(error, Conflict)}), flush=True)
        sys.exit(f"kernelfleet_netwall: {error}")


if __name__ == "__main__":
    main()
