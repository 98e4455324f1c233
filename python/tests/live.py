"""A live `anneval serve` for the tests: the binary from $ANNEVAL_BIN (the
Rust test tests/python.rs sets it), on a free loopback port."""

import os
import subprocess
import tempfile
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BRUTE = open(os.path.join(ROOT, "guest-template", "variants", "brute_force.rs")).read()
REFERENCE = open(os.path.join(ROOT, "guest-template", "src", "kernel.rs")).read()
CPP_REFERENCE = open(os.path.join(ROOT, "guest-template-cpp", "kernel.cpp")).read()

#: Options that score in a second or two: the small, easy set.
QUICK = {"dataset": "random-xs-20-euclidean", "ef": [10, 40], "runs": 1, "fuel": False, "max_queries": 100}

#: A URL nothing listens on.
DEAD = "http://127.0.0.1:9"


def binary():
    path = os.environ.get("ANNEVAL_BIN")
    if not path:
        raise unittest.SkipTest("needs $ANNEVAL_BIN (cargo test --test python sets it)")
    return path


class Server:
    def __init__(self, *args):
        self.dir = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [binary(), "serve", "--addr", "127.0.0.1:0", "--db", os.path.join(self.dir.name, "ledger.sqlite"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log = []
        found = threading.Event()
        self.url = None

        def read():
            for raw in self.process.stderr:
                line = raw.decode(errors="replace")
                self.log.append(line)
                if self.url is None and "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].split()[0]
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(300)
        if self.url is None:
            self.stop()
            raise RuntimeError("anneval serve did not start: " + "".join(self.log[-5:]))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.dir.cleanup()


def fenced(code, language="rust"):
    return f"Here is my kernel:\n```{language}\n{code}```\n"


def variant(code, tag):
    """The same kernel as a distinct candidate (a comment differs)."""
    return f"{code}\n// variant {tag}\n"
