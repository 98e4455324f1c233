"""One ``anneval serve`` per node of a Ray cluster.

Measurements must not share cores: two on one core ruin both numbers. So
each replica is a Ray actor pinned to its node (a hard node affinity) that
reserves that node's CPUs (``num_cpus``), so that Ray schedules nothing else
there, and runs ``anneval serve`` with one worker per reserved CPU. The
actor's process owns the server: when the actor ends, so does the server.

From a driver that is already connected to the cluster (a verl, OpenRLHF or
SkyRL driver, after its own ``ray.init()``)::

    from anneval.cluster import start_replicas
    replicas = start_replicas(binary="/opt/anneval/bin/anneval",
                              env={"ANNEVAL_DATA": "/data/ann"})
    reward = reward_function(replicas.urls, dataset="fashion-mnist-784-euclidean")
    ...
    replicas.stop()

or from a shell, to serve until interrupted and print the endpoints::

    anneval-ray --address auto --binary /opt/anneval/bin/anneval --urls-file urls.txt

The binary must exist at that path on every node (and each node needs its
datasets: ``anneval datasets fetch`` there, or a shared ``ANNEVAL_DATA``).
Nodes that run the trainer's GPU work should usually be left out
(``nodes=``), or given fewer CPUs (``cpus=``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

__all__ = ["Replicas", "start_replicas", "main"]

# PR_SET_PDEATHSIG: the server gets SIGTERM when the actor's process dies,
# however it dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class _Server:
    """``anneval serve`` run by a replica actor."""

    def __init__(self, binary, workers, port, args, env, node):
        import ray

        self.host = ray.util.get_node_ip_address()
        args = [a.replace("{node}", node[:12]) for a in args]
        command = [binary, "serve", "--addr", f"0.0.0.0:{port}", "--workers", str(workers), *args]
        environment = dict(os.environ)
        environment.update(env or {})
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment,
            preexec_fn=_die_with_parent,
        )
        self.listening = None
        self.log = []
        self.started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log = (self.log + [line])[-50:]
            if self.listening is None and "listening on http://" in line:
                self.listening = line.split("listening on http://", 1)[1].split()[0]
                self.started.set()
        self.started.set()

    def url(self, timeout):
        """The replica's URL once it listens; raises if it never does."""
        self.started.wait(timeout)
        if self.listening is None:
            state = "exited" if self.process.poll() is not None else f"not listening after {timeout:.0f} s"
            raise RuntimeError(f"anneval serve on {self.host} {state}: " + " | ".join(self.log[-5:]))
        port = self.listening.rsplit(":", 1)[1]
        return f"http://{self.host}:{port}"

    def stop(self, grace):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def pid(self):
        return self.process.pid


class Replicas:
    """The running replicas: their ``urls``, and ``stop()`` (also on leaving
    a ``with`` block)."""

    def __init__(self, actors, urls, nodes):
        self.actors = actors
        self.urls = urls
        self.nodes = nodes

    def stop(self, grace=60.0):
        """Stops the servers (running work may take ``grace`` seconds to
        finish) and their actors."""
        import ray

        try:
            ray.get([a.stop.remote(grace) for a in self.actors], timeout=grace + 30)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _cpus(node):
    return int(node.get("Resources", {}).get("CPU", 0))


def start_replicas(binary="anneval", *, nodes=None, cpus=None, port=0, args=(), env=None, timeout=600.0):
    """Starts one replica per alive node with CPUs (or per node ID in
    ``nodes``), each reserving ``cpus`` CPUs (default: all of its node's)
    and serving with as many workers. ``port`` 0 lets each replica pick a
    free port. ``args`` go to ``anneval serve`` (e.g. ``["--queue",
    "64"]``), with ``{node}`` replaced by the node's ID (a ledger per node
    on a shared file system: ``["--db", "/shared/anneval/ledger-{node}.sqlite"]``;
    SQLite must not be shared over NFS); ``env`` to its environment. Returns :class:`Replicas` once
    every replica listens (waiting up to ``timeout`` seconds: the first
    start on a machine builds the guest's dependencies)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not ray.is_initialized():
        ray.init(address="auto")
    alive = [n for n in ray.nodes() if n.get("Alive") and _cpus(n) > 0]
    if nodes is not None:
        wanted = set(nodes)
        alive = [n for n in alive if n["NodeID"] in wanted]
        missing = wanted - {n["NodeID"] for n in alive}
        if missing:
            raise ValueError(f"no alive node with CPUs has the ID {sorted(missing)[0]}")
    if not alive:
        raise ValueError("the cluster has no alive node with CPUs")
    Server = ray.remote(max_restarts=0, max_concurrency=4)(_Server)
    actors = []
    for node in alive:
        reserve = cpus or _cpus(node)
        if reserve > _cpus(node):
            raise ValueError(f"node {node['NodeID']} has {_cpus(node)} CPUs, fewer than cpus={reserve}")
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        actors.append(
            Server.options(num_cpus=reserve, scheduling_strategy=strategy).remote(
                binary, reserve, port, list(args), env, node["NodeID"]
            )
        )
    try:
        urls = ray.get([a.url.remote(timeout) for a in actors], timeout=timeout + 60)
    except BaseException:
        for actor in actors:
            ray.kill(actor)
        raise
    return Replicas(actors, urls, [n["NodeID"] for n in alive])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="anneval-ray", description="Serve anneval on every node of a Ray cluster until interrupted."
    )
    parser.add_argument("--address", default="auto", help="the Ray cluster (default: auto)")
    parser.add_argument("--binary", default="anneval", help="the anneval binary's path on every node")
    parser.add_argument("--port", type=int, default=8080, help="the port on each node (0: any free one)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs reserved per replica (default: all)")
    parser.add_argument("--urls-file", help="write the endpoints here, one per line")
    parser.add_argument("serve_args", nargs="*", help="more arguments for anneval serve (after --)")
    a = parser.parse_args(argv)
    import ray

    ray.init(address=a.address)
    replicas = start_replicas(a.binary, cpus=a.cpus, port=a.port, args=a.serve_args)
    print(",".join(replicas.urls), flush=True)
    if a.urls_file:
        tmp = a.urls_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(replicas.urls) + "\n")
        os.replace(tmp, a.urls_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        replicas.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
