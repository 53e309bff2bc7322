"""A cloud's bad days, shared by the test peers (the ministack launcher, fake_arm.py and
fake_google.py): a given share of API requests is answered with a fault instead of the work.

    --faults RATE       the share of requests that fail (0 to 1; 0: none)
    --fault-seed N      the seed of the random choice (runs with one seed fault alike
                        when their requests come in the same order)
    --fault-log FILE    one JSON line per fault fired: {"kind", "request"}
    --fault-kinds K,..  only these kinds (default: all three)
    --fault-match RE    only requests whose description matches (a regular expression,
                        searched in "iam:CreateRole", "eks:POST /clusters/...", "PUT /subscriptions/...")
    --fault-limit N     at most N faults in all (0: no limit)
    --fault-once        fault each request (its description and body) at most once, so
                        that its retry goes through: a test of one lost reply per create
    --fault-lost-on RE  the first write whose description matches loses its reply, whatever
                        the rate (a test of every fault kind shows a lost reply on that call)
    --request-log FILE  one JSON line per API request, faulted or not: {"write", "request"}
                        (a test checks on the peer that idplan wrote nothing)
    --write-gate SOCKET a Unix socket on which a test waits for the Nth write that landed
                        (see WriteGate): it kills its client at a known write, not at a time
    --fault-switch FILE faults fire only while FILE exists (a test seeds its peer and reads
                        what the peer holds with faults off, and runs idplan with them on);
                        when FILE holds a rule, it decides besides (a test moves its faults
                        from call to call): a regular expression the request must match, or
                        {"match": RE, "kinds": [K, ...], "once": BOOL, "rate": R}, which
                        replaces --fault-match, --fault-kinds, --fault-once and --faults while
                        it holds (a request faulted once under one rule is faulted again
                        under another)

The kinds, equally likely, but a kind that has not fired yet first (of those the request can
take), so that a few faults already show every kind:

* "throttle": the cloud's throttling answer (AWS Throttling / ThrottlingException, ARM 429
  with Retry-After, Google 429 RESOURCE_EXHAUSTED); nothing is done;
* "error": a 5xx; nothing is done;
* "lost": for a write only, the write is done and then a 5xx is answered, as when the
  reply is lost on its way back: a client that retries finds its own work already there.
  A read gets an "error" instead; a write the peer refuses anyway is answered as it is,
  and the fault is not counted (the peer calls `landed` once the write succeeded).

And one kind only on request (`--fault-kinds deny`): "deny", the cloud's 403 (AccessDenied,
AuthorizationFailed, PERMISSION_DENIED), which a client does not retry: a failure that stays.

Only the cloud's API is faulted, never a peer's health check or test-only endpoints.
Python 3 standard library only.
"""

import hashlib
import json
import os
import random
import re
import sys
import threading
import time

KINDS = ("throttle", "error", "lost")
ON_REQUEST = ("deny",)


def add_arguments(parser):
    parser.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                        help="answer this share of API requests (0 to 1) with throttling, "
                             "a 5xx, or a 5xx after the write was done")
    parser.add_argument("--fault-seed", type=int, default=0, metavar="N")
    parser.add_argument("--fault-log", default=None, metavar="FILE",
                        help="append one JSON line per fault fired")
    parser.add_argument("--fault-kinds", default=",".join(KINDS), metavar="KINDS",
                        help="the kinds of fault, comma separated: " + ", ".join(KINDS + ON_REQUEST))
    parser.add_argument("--fault-match", default="", metavar="REGEX",
                        help="fault only requests whose description matches")
    parser.add_argument("--fault-limit", type=int, default=0, metavar="N",
                        help="at most N faults in all (0: no limit)")
    parser.add_argument("--fault-once", action="store_true",
                        help="fault each request (description and body) at most once")
    parser.add_argument("--request-log", default=None, metavar="FILE",
                        help="append one JSON line per API request")
    parser.add_argument("--fault-lost-on", default="", metavar="REGEX",
                        help="the first write matching REGEX loses its reply, whatever the rate")
    parser.add_argument("--write-gate", default=None, metavar="SOCKET",
                        help="a Unix socket on which a test waits for the Nth write that landed")
    parser.add_argument("--fault-switch", default=None, metavar="FILE",
                        help="fault only while FILE exists (and, when it holds a regular "
                             "expression, only the requests it matches)")


class Faults:
    def __init__(self, rate=0.0, seed=0, log=None, kinds=KINDS, match="", limit=0, switch=None,
                 once=False, requests=None, lost_on="", gate=None):
        if not 0.0 <= rate <= 1.0:
            raise SystemExit(f"--faults must be between 0 and 1, got {rate}")
        unknown = [k for k in kinds if k not in KINDS + ON_REQUEST]
        if unknown or not kinds:
            raise SystemExit(f"--fault-kinds: unknown kind {unknown}; the kinds are "
                             f"{', '.join(KINDS + ON_REQUEST)}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.match = re.compile(match) if match else None
        self.limit = limit
        self.switch = switch
        self.once = once
        self.requests = requests
        self.seen = set()
        self.random = random.Random(seed)
        self.log = log
        self.lock = threading.Lock()
        self.fired = {kind: 0 for kind in KINDS + ON_REQUEST}
        self.lost_on = re.compile(lost_on) if lost_on else None
        self.lost_on_fired = False
        self.gate = WriteGate(gate) if gate else None

    @classmethod
    def active(cls, args):
        """Whether the arguments ask for anything: faults or a request log."""
        return args.faults > 0 or bool(args.request_log) or bool(args.write_gate)

    @classmethod
    def from_args(cls, args):
        kinds = [k.strip() for k in args.fault_kinds.split(",") if k.strip()]
        return cls(args.faults, args.fault_seed, args.fault_log, kinds, args.fault_match,
                   args.fault_limit, args.fault_switch, args.fault_once, args.request_log,
                   args.fault_lost_on, args.write_gate)

    def pick(self, write, request, body=b""):
        """The fault for this request, or None. A fault is counted and logged here, but for
        "lost", which is counted by `landed` once the write succeeded."""
        if self.gate:
            self.gate.wait_open()
        if self.requests:
            with self.lock, open(self.requests, "a", encoding="utf-8") as f:
                f.write(json.dumps({"write": bool(write), "request": request}) + "\n")
        if self.rate <= 0 or (self.match and not self.match.search(request)):
            return None
        kinds, once, rate, rule = self.kinds, self.once, self.rate, ""
        if self.switch:
            try:
                with open(self.switch, encoding="utf-8") as f:
                    rule = f.read().strip()
            except FileNotFoundError:
                return None
            if rule.startswith("{"):
                parsed = json.loads(rule)
                pattern = parsed.get("match", "")
                kinds = tuple(parsed.get("kinds") or kinds)
                once = bool(parsed.get("once", once))
                rate = float(parsed.get("rate", rate))
            else:
                pattern = rule
            if pattern and not re.search(pattern, request):
                return None
        with self.lock:
            if self.limit and sum(self.fired.values()) >= self.limit:
                return None
            key = (rule, request, hashlib.sha256(body or b"").hexdigest())
            if once and key in self.seen:
                return None
            forced = (write and "lost" in kinds and self.lost_on and not self.lost_on_fired
                      and self.lost_on.search(request))
            if not forced and self.random.random() >= rate:
                return None
            self.seen.add(key)
            kind = self.random.choice(kinds)
            # A kind not fired yet goes first: a run with a few faults among many requests
            # would otherwise miss a kind by chance. A read cannot lose its reply.
            fresh = [k for k in kinds if not self.fired[k] and (write or k != "lost")]
            if fresh:
                kind = "lost" if "lost" in fresh else fresh[0]
            if forced:
                kind = "lost"
                self.lost_on_fired = True
            if kind == "lost" and not write:
                kind = "error"
            if kind != "lost":
                self._record(kind, request)
        return kind

    def landed(self, request):
        """A write picked for a "lost" fault succeeded: its reply is now lost."""
        with self.lock:
            self._record("lost", request)

    def answered(self, write, request, body, status):
        """A request was handled with `status`, its reply not sent yet: a write that landed
        counts for the write gate, which may hold this reply (see WriteGate)."""
        if self.gate and write and status < 400:
            self.gate.landed(request, body)

    def _record(self, kind, request):
        self.fired[kind] += 1
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"kind": kind, "request": request}) + "\n")


class WriteGate:
    """Waits of a test for a write, on a Unix socket. The test connects and sends one line,
    {"n": N, "match": RE}; the gate answers {"armed": true} and counts from then the writes
    that landed (the peer did them) whose description matches. On the Nth it answers
    {"request": ..., "body": ...} and holds that write's reply, and every other request of
    the peer, until the test sends a line or closes the socket (or for HOLD seconds): the
    test kills its client meanwhile, which then never learns that its write was done. When
    N writes do not come within WAIT seconds it answers {"timeout": COUNT}."""

    WAIT = 120
    HOLD = 60

    def __init__(self, path):
        import socket
        if os.path.exists(path):
            os.remove(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.lock = threading.Lock()
        self.waiter = None
        self.open = threading.Event()
        self.open.set()
        threading.Thread(target=self.serve, name="write-gate", daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.server.accept()
            threading.Thread(target=self.one, args=(conn,), daemon=True).start()

    def one(self, conn):
        with conn, conn.makefile("rwb") as f:
            ask = json.loads(f.readline())
            waiter = {"n": int(ask["n"]), "match": re.compile(ask.get("match") or ""),
                      "count": 0, "reached": threading.Event(), "released": threading.Event()}
            with self.lock:
                self.waiter = waiter
            f.write(b'{"armed": true}\n')
            f.flush()
            if waiter["reached"].wait(self.WAIT):
                f.write((json.dumps(waiter["hit"]) + "\n").encode())
                f.flush()
                f.readline()
                waiter["released"].set()
                self.open.set()
            else:
                with self.lock:
                    if self.waiter is waiter:
                        self.waiter = None
                f.write((json.dumps({"timeout": waiter["count"]}) + "\n").encode())
                f.flush()

    def landed(self, request, body):
        with self.lock:
            waiter = self.waiter
            if not waiter or not waiter["match"].search(request):
                return
            waiter["count"] += 1
            if waiter["count"] < waiter["n"]:
                return
            self.waiter = None
            self.open.clear()
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
        waiter["hit"] = {"request": request, "body": text}
        waiter["reached"].set()
        waiter["released"].wait(self.HOLD)
        self.open.set()

    def wait_open(self):
        """Requests wait while a write's reply is held."""
        self.open.wait(self.HOLD)


def exit_with_parent(name=None):
    """Exit once re-parented: a test binary killed outright leaves no peer behind. With a
    `name`, say so on stderr."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                if name:
                    print(f"{name}: parent went away; exiting", file=sys.stderr, flush=True)
                os._exit(0)

    threading.Thread(target=watch, name="peer-parent-watch", daemon=True).start()
