"""A cloud's bad days, shared by the test peers (the ministack launcher, fake_arm.py and
fake_google.py): a given share of API requests is answered with a fault instead of the work.

    --faults RATE       the share of requests that fail (0 to 1; 0: none)
    --fault-seed N      the seed of the random choice (runs with one seed fault alike
                        when their requests come in the same order)
    --fault-log FILE    one JSON line per fault fired: {"kind", "request"}

The kinds, equally likely:

* "throttle": the cloud's throttling answer (AWS Throttling / ThrottlingException, ARM 429
  with Retry-After, Google 429 RESOURCE_EXHAUSTED); nothing is done;
* "error": a 5xx; nothing is done;
* "lost": for a write only, the write is done and then a 5xx is answered, as when the
  reply is lost on its way back: a client that retries finds its own work already there.
  A read gets an "error" instead.

Only the cloud's API is faulted, never a peer's health check or test-only endpoints.
Python 3 standard library only.
"""

import json
import random
import threading

KINDS = ("throttle", "error", "lost")


def add_arguments(parser):
    parser.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                        help="answer this share of API requests (0 to 1) with throttling, "
                             "a 5xx, or a 5xx after the write was done")
    parser.add_argument("--fault-seed", type=int, default=0, metavar="N")
    parser.add_argument("--fault-log", default=None, metavar="FILE",
                        help="append one JSON line per fault fired")


class Faults:
    def __init__(self, rate=0.0, seed=0, log=None):
        if not 0.0 <= rate <= 1.0:
            raise SystemExit(f"--faults must be between 0 and 1, got {rate}")
        self.rate = rate
        self.random = random.Random(seed)
        self.log = log
        self.lock = threading.Lock()
        self.fired = {kind: 0 for kind in KINDS}

    @classmethod
    def from_args(cls, args):
        return cls(args.faults, args.fault_seed, args.fault_log)

    def pick(self, write, request):
        """The fault for this request, or None; a fault is counted and logged here."""
        if self.rate <= 0:
            return None
        with self.lock:
            if self.random.random() >= self.rate:
                return None
            kind = self.random.choice(KINDS)
            if kind == "lost" and not write:
                kind = "error"
            self.fired[kind] += 1
            if self.log:
                with open(self.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"kind": kind, "request": request}) + "\n")
        return kind
