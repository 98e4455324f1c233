"""The client's own logic, and what a dead service does to each adapter:
never an exception that ends a training run."""

import asyncio
import http.server
import os
import threading
import time
import unittest
from unittest import mock

from anneval import AnnevalClient, AnnevalError, options_from_env, plan_batches
from anneval.trl import async_reward_function, reward_function
from anneval import verl

from .live import BRUTE, DEAD, QUICK, fenced


class Batches(unittest.TestCase):
    def test_groups_stay_together(self):
        self.assertEqual(plan_batches([8] * 16, 64), [list(range(0, 64)), list(range(64, 128))])
        # 3 groups of 30: two fit in 64, the third starts a batch.
        self.assertEqual([len(b) for b in plan_batches([30, 30, 30], 64)], [60, 30])
        # A group larger than a batch is split; the next group, whole, may
        # join its remainder.
        self.assertEqual([len(b) for b in plan_batches([70, 2], 64)], [64, 8])
        self.assertEqual([len(b) for b in plan_batches([5, 70], 64)], [5, 64, 6])
        flat = [i for b in plan_batches([3, 1, 7, 2], 4) for i in b]
        self.assertEqual(flat, list(range(13)), "every index once, in order")
        self.assertEqual(plan_batches([], 64), [])
        with self.assertRaises(ValueError):
            plan_batches([1], 0)


class Replicas(unittest.TestCase):
    def test_ranks_start_at_different_replicas(self):
        urls = ["http://a:1", "http://b:1", "http://c:1"]
        firsts = [AnnevalClient(urls, rank=r)._next_url() for r in range(6)]
        self.assertEqual(firsts, urls + urls)
        client = AnnevalClient(urls, rank=1)
        self.assertEqual([client._next_url() for _ in range(4)], ["http://b:1", "http://c:1", "http://a:1", "http://b:1"])

    def test_settings_from_the_environment(self):
        env = {"ANNEVAL_URLS": "http://a:1, http://b:2", "ANNEVAL_OPTIONS": '{"dataset": "d", "runs": 2}',
               "ANNEVAL_PENALTY": "-2", "ANNEVAL_LANGUAGE": "cpp"}
        self.assertEqual(options_from_env(env), {"urls": ["http://a:1", "http://b:2"], "language": "cpp",
                                                 "penalty": -2.0, "options": {"dataset": "d", "runs": 2}})
        env = {"ANNEVAL_TIMEOUT": "60", "ANNEVAL_MAX_RETRIES": "2", "ANNEVAL_NORMALIZED": "false"}
        self.assertEqual(options_from_env(env), {"timeout": 60.0, "max_retries": 2, "normalized": False})
        for bad in ({"ANNEVAL_OPTIONS": "[1]"}, {"ANNEVAL_OPTIONS": "{"}, {"ANNEVAL_PENALTY": "low"},
                    {"ANNEVAL_TIMEOUT": "0"}, {"ANNEVAL_TIMEOUT": "soon"}, {"ANNEVAL_MAX_RETRIES": "0"},
                    {"ANNEVAL_MAX_RETRIES": "2.5"}, {"ANNEVAL_NORMALIZED": "maybe"}):
            with self.assertRaises(ValueError):
                options_from_env(bad)


    def test_axolotl_takes_the_clients_timeout_and_tries_from_the_environment(self):
        # A service that accepts and never answers: with the default timeout
        # (900 s) a step would wait; the environment's 1 s and one try give
        # up at once, and the completion's reward is None (TRL skips it).
        import socket

        import anneval.axolotl

        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        env = {"ANNEVAL_URLS": f"http://127.0.0.1:{listener.getsockname()[1]}", "ANNEVAL_TIMEOUT": "1",
               "ANNEVAL_MAX_RETRIES": "1", "ANNEVAL_OPTIONS": '{"dataset": "random-xs-20-euclidean"}'}
        with mock.patch.dict(os.environ, env), mock.patch.object(anneval.axolotl, "_built", None):
            started = time.monotonic()
            rewards = anneval.axolotl.reward(prompts=["p"], completions=[fenced(BRUTE)])
            self.assertEqual(rewards, [None])
            self.assertLess(time.monotonic() - started, 10)


class DeadService(unittest.TestCase):
    """Unreachable replicas: `None` for TRL (it skips the completion), the
    penalty flagged as a service error for verl."""

    def client(self):
        return AnnevalClient([DEAD], max_retries=2, timeout=5)

    def test_the_client_raises(self):
        with self.assertRaises(AnnevalError):
            self.client().health()

    def test_trl_gets_none(self):
        reward = reward_function(client=self.client(), **QUICK)
        completions = [fenced(BRUTE), "no code", None]
        self.assertEqual(reward(prompts=["p"] * 3, completions=completions), [None, -1.0, None])

    def test_trl_async_gets_none(self):
        reward = async_reward_function(client=self.client(), **QUICK)
        got = asyncio.run(reward(prompts=["p"], completions=[fenced(BRUTE)]))
        self.assertEqual(got, [None])

    def test_verl_gets_the_penalty_flagged(self):
        one = verl.compute_score("anneval", fenced(BRUTE), None, None, urls=DEAD, penalty=-3.0, max_retries=2, **QUICK)
        self.assertEqual(one["score"], -3.0)
        self.assertEqual(one["anneval_service_error"], 1.0)
        batch = verl.compute_score_batch(["anneval"], [fenced(BRUTE)], [None], [None], urls=DEAD, max_retries=2, **QUICK)
        self.assertEqual((batch[0]["score"], batch[0]["anneval_service_error"]), (-1.0, 1.0))


class GarbledService(unittest.TestCase):
    """A replica behind a misconfigured proxy that answers 200 with HTML:
    a service error, never an exception or a reward."""

    def setUp(self):
        class Proxy(http.server.BaseHTTPRequestHandler):
            def answer(self):
                body = b"<html>502 from the proxy</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.proxy.server_address[1]}"

    def tearDown(self):
        self.proxy.shutdown()
        self.proxy.server_close()

    def test_trl_and_verl(self):
        reward = reward_function(self.url, **QUICK)
        self.assertEqual(reward(prompts=["p"], completions=[fenced(BRUTE)]), [None])
        one = verl.compute_score("anneval", fenced(BRUTE), None, None, urls=self.url, **QUICK)
        self.assertEqual((one["score"], one["anneval_service_error"]), (-1.0, 1.0))


if __name__ == "__main__":
    unittest.main()
