"""The Ray launcher on a local cluster of two nodes (Ray's own test
cluster: two raylets on this machine, one CPU each): one replica per node,
a TRL-shaped call scored through both, and nothing left running after."""

import os
import subprocess
import tempfile
import time
import unittest
import urllib.request

from anneval import AnnevalClient
from anneval.trl import reward_function

from .live import BRUTE, QUICK, ROOT, binary, fenced, variant

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # scripts/setup installs Ray in .venv
    ray = None


def evaluations(url):
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("anneval_evaluations_total{"))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended too.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@unittest.skipIf(ray is None, "Ray is not installed (scripts/setup installs it in .venv)")
class LocalCluster(unittest.TestCase):
    def test_one_replica_per_node_scores_a_batch(self):
        from anneval.cluster import start_replicas

        anneval = binary()
        store = 100 * 1024 * 1024
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store})
        cluster.add_node(num_cpus=1, object_store_memory=store)
        work = tempfile.TemporaryDirectory()
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            cluster.wait_for_nodes()
            started = time.monotonic()
            replicas = start_replicas(anneval, args=["--db", os.path.join(work.name, "ledger-{node}.sqlite")],
                                      timeout=300)
            launched = time.monotonic() - started
            self.assertEqual(len(replicas.urls), 2)
            self.assertEqual(len(set(replicas.nodes)), 2, "one replica per node")
            self.assertEqual(len(set(replicas.urls)), 2)
            # Each replica holds its node's CPU: nothing else fits there (the
            # cluster's view of free resources catches up within a moment).
            deadline = time.monotonic() + 30
            while ray.available_resources().get("CPU", 0) > 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(ray.available_resources().get("CPU", 0), 0)
            for node in replicas.nodes:
                self.assertTrue(os.path.exists(os.path.join(work.name, f"ledger-{node[:12]}.sqlite")))

            # A TRL-shaped call: two prompts, three completions each; batches
            # of three, so each prompt's group is one batch, one per replica.
            client = AnnevalClient(replicas.urls, max_batch=3)
            reward = reward_function(client=client, **QUICK)
            completions = [fenced(variant(BRUTE, f"ray{i}")) for i in range(6)]
            started = time.monotonic()
            rewards = reward(prompts=["a"] * 3 + ["b"] * 3, completions=completions,
                             completion_ids=[[1]] * 6)
            scored = time.monotonic() - started
            self.assertTrue(all(r is not None and r > 0 for r in rewards), rewards)
            # Three kernels and the reference on each replica.
            self.assertEqual([evaluations(url) for url in replicas.urls], [4.0, 4.0])
            print(f"\nRay local cluster: 2 replicas listening {launched:.1f} s after start; "
                  f"6 completions scored in {scored:.1f} s", flush=True)

            pids = ray.get([actor.pid.remote() for actor in replicas.actors])
            replicas.stop(grace=30)
            deadline = time.monotonic() + 30
            while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertFalse(any(alive(pid) for pid in pids), "the servers stopped with their actors")
        finally:
            ray.shutdown()
            cluster.shutdown()
            work.cleanup()


@unittest.skipIf(ray is None, "Ray is not installed (scripts/setup installs it in .venv)")
class PlainInit(unittest.TestCase):
    def test_a_one_machine_ray_init(self):
        # The simplest cluster: ray.init() on this machine, one node with
        # both its CPUs: one replica, serving with two workers.
        import json

        from anneval.cluster import start_replicas

        anneval = binary()
        work = tempfile.TemporaryDirectory()
        try:
            ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, log_to_driver=False)
            with start_replicas(anneval, args=["--db", os.path.join(work.name, "ledger.sqlite")],
                                timeout=300) as replicas:
                self.assertEqual(len(replicas.urls), 1)
                with urllib.request.urlopen(f"{replicas.urls[0]}/healthz", timeout=30) as response:
                    self.assertEqual(json.loads(response.read())["workers"], min(2, os.cpu_count()))
                reward = reward_function(replicas.urls, **QUICK)
                self.assertGreater(reward(prompts=["p"], completions=[fenced(variant(BRUTE, "init"))])[0], 0)
        finally:
            ray.shutdown()
            work.cleanup()


class Slurm(unittest.TestCase):
    def test_the_example_job_script_is_valid_bash(self):
        # Documented, not run here (no Slurm): at least it parses.
        script = os.path.join(ROOT, "python", "examples", "anneval-serve.sbatch")
        subprocess.run(["bash", "-n", script], check=True)


if __name__ == "__main__":
    unittest.main()
