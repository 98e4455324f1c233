"""Each trainer's adapter called exactly as its trainer calls it (argument
names, types, async), against a live `anneval serve`; OpenRLHF's JSON
against the service's own /get_reward; the exemplar pool filled by all of
them."""

import asyncio
import inspect
import json
import os
import threading
import unittest
import urllib.request

from anneval import AnnevalClient
from anneval import verl
from anneval.rewards import SCORING_OPTIONS, ConfigurationError, plain
from anneval.trl import async_reward_function, reward_function

from .live import BRUTE, CPP_REFERENCE, QUICK, Server, fenced, variant

server = None


ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def setUpModule():
    global server
    server = Server("--template", os.path.join(ROOT_DIR, "tests", "templates", "flatscan"))


def tearDownModule():
    server.stop()


def trl_call(reward, prompts, completions, **columns):
    """TRL's call: every keyword it passes (grpo_trainer's _calculate_rewards)."""
    extra, metrics = {}, {}
    rewards = reward(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2, 3] if c is not None else [] for c in completions],
        trainer_state=object(),
        log_extra=lambda column, values: extra.setdefault(column, []).extend(values),
        log_metric=lambda name, value: metrics.setdefault(name, []).append(value),
        **columns,
    )
    return rewards, extra, metrics


class Trl(unittest.TestCase):
    def test_conversational_completions_with_logs(self):
        reward = reward_function(server.url, penalty=-2.0, **QUICK)
        self.assertEqual(reward.__name__, "anneval_random_xs_20_euclidean")
        prompt = [{"role": "user", "content": "Write a faster kernel."}]
        completions = [
            [{"role": "assistant", "content": [{"type": "text", "text": fenced(variant(BRUTE, "trl"))}]}],
            [{"role": "assistant", "content": "I cannot."}],
            [{"role": "assistant", "content": fenced("fn broken(")},
             {"role": "tool", "content": fenced(variant(BRUTE, "tool"))}],
            None,
        ]
        rewards, extra, metrics = trl_call(reward, [prompt] * 4, completions, task=["ann"] * 4)
        self.assertGreater(rewards[0], 0.0)
        self.assertLess(rewards[0], 1.0, "a scan is slower than the reference HNSW")
        self.assertEqual(rewards[1:], [-2.0, -2.0, None])
        verdicts = extra["anneval_random_xs_20_euclidean_verdict"]
        self.assertEqual(verdicts, ["ok", "no_code", "compile_error", "skipped"])
        self.assertIn("error", extra["anneval_random_xs_20_euclidean_message"][2])
        self.assertEqual(metrics["anneval_random_xs_20_euclidean/ok"], [1 / 3])

    def test_async_functions_are_gathered_like_trl_does(self):
        fast = async_reward_function(server.url, name="anneval_async", **QUICK)
        raw = async_reward_function(server.url, name="anneval_raw", normalized=False, **QUICK)
        self.assertTrue(inspect.iscoroutinefunction(fast))
        self.assertEqual(fast.__name__, "anneval_async")
        completions = [fenced(variant(BRUTE, "async"))]

        async def both():
            return await asyncio.gather(
                fast(prompts=["p"], completions=completions, completion_ids=[[1]]),
                raw(prompts=["p"], completions=completions, completion_ids=[[1]]),
            )

        normalized, queries_per_second = asyncio.run(both())
        self.assertTrue(0.0 < normalized[0] < 1.0, normalized)
        self.assertGreater(queries_per_second[0], 100.0)

    def test_a_row_may_carry_its_own_options(self):
        reward = reward_function(server.url, **QUICK)
        completions = [fenced(variant(BRUTE, "row")), fenced(variant(BRUTE, "row"))]
        rewards, extra, _ = trl_call(reward, ["p", "q"], completions, anneval=[None, {"ef": [20]}])
        self.assertTrue(all(r > 0 for r in rewards), rewards)
        client = AnnevalClient(server.url)
        pool = client.exemplars(**{**QUICK, "ef": [20]})
        self.assertEqual(len(pool), 1, "only the second row was measured with ef 20")
        self.assertIn("// variant row", pool[0]["source"])

    def test_cpp_kernels(self):
        reward = reward_function(server.url, language="cpp", **QUICK)
        rewards, _, _ = trl_call(reward, ["p", "p"], [fenced(CPP_REFERENCE, "cpp"), fenced("struct Index;", "cpp")])
        # Measured 0.50-0.8 of the Rust reference in one run; a broken C++
        # path would be the penalty.
        self.assertGreater(rewards[0], 0.3, "the C++ reference is close to the Rust one")
        self.assertEqual(rewards[1], -1.0)


class Bundles(unittest.TestCase):
    """A C++ kernel of several files, as the client sends it (options of
    its own, so that its measurements stay out of the other tests' pool)."""

    OPTIONS = {**QUICK, "max_queries": 80}

    def test_a_folder_of_headers_scores_and_nothing_leaves_it(self):
        from anneval.client import AnnevalError

        root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "tests", "corpus", "hnswlib_style")
        files = {}
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                with open(path) as f:
                    files[os.path.relpath(path, root)] = f.read()
        self.assertEqual(len(files), 4)
        client = AnnevalClient(server.url)
        answer = client.score(files, **self.OPTIONS)
        self.assertEqual(answer["verdict"], "ok", answer["message"])
        self.assertEqual(answer["candidate"]["kind"], "cpp")
        with self.assertRaisesRegex(AnnevalError, "HTTP 400.*no `..`"):
            client.score({**files, "../escape.h": ""}, **self.OPTIONS)
        # A completion holding each file in a fenced block that names it,
        # through TRL's function and through /get_reward.
        completion = "Here is the kernel, file by file:\n" + "".join(
            f"```cpp {name}\n{text}```\n" for name, text in sorted(files.items()))
        reward = reward_function(server.url, language="cpp", **self.OPTIONS)
        rewards, extra, _ = trl_call(reward, ["p"], [completion])
        self.assertGreater(rewards[0], 0.3, extra)
        query = "dataset=random-xs-20-euclidean&ef=10%2C40&runs=1&fuel=false&max_queries=80&language=cpp"
        prompt = "<|im_start|>user\nWrite a kernel.<|im_end|>\n<|im_start|>assistant\n"
        body = {"query": [prompt + completion], "prompts": [prompt], "labels": [""]}
        request = urllib.request.Request(f"{server.url}/get_reward?{query}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=180) as response:
            answer = json.loads(response.read())
        self.assertEqual(answer["verdicts"], ["ok"], answer)


class Templates(unittest.TestCase):
    """A codebase registered with the service: a completion is the files it
    changes, each in a fenced block that names it."""

    OPTIONS = {**QUICK, "max_queries": 70, "template": "flatscan"}

    def test_a_completion_changes_named_files_of_the_codebase(self):
        path = "flatscan/distance.hpp"
        with open(os.path.join(ROOT_DIR, "tests", "templates", "flatscan-sdk", path)) as f:
            changed = f.read()
        reward = reward_function(server.url, **self.OPTIONS)
        named = f"The distance, vectorised:\n```cpp {path}\n{changed}```\n"
        unnamed = f"The distance, vectorised:\n```cpp\n{changed}```\n"
        rewards, extra, _ = trl_call(reward, ["p", "p"], [named, unnamed])
        self.assertGreater(rewards[0], 0.0, extra)
        self.assertEqual(rewards[1], -1.0, extra)
        self.assertIn("template flatscan", json.dumps(extra))


class Mistakes(unittest.TestCase):
    """A misconfigured reward function fails loudly, once, at start: never
    rewards that are all missing while training goes on."""

    def test_an_unknown_option_is_refused_when_the_function_is_made(self):
        with self.assertRaisesRegex(ConfigurationError, "'retries' is a setting of the client.*max_retries="):
            reward_function(server.url, retries=3, **QUICK)
        with self.assertRaisesRegex(ConfigurationError, "'max_querys' is not a scoring option"):
            reward_function(server.url, max_querys=10)
        # The client's own settings are keywords of the function.
        reward = reward_function(server.url, timeout=5.0, max_retries=2, **QUICK)
        self.assertEqual(reward.__name__, "anneval_random_xs_20_euclidean")

    def test_a_request_the_service_refuses_raises_on_the_first_call(self):
        reward = reward_function(server.url, **{**QUICK, "dataset": "no-such-dataset"})
        with self.assertRaisesRegex(ConfigurationError, "refused the request.*no-such-dataset"):
            trl_call(reward, ["p"], [fenced(variant(BRUTE, "refused"))])
        with self.assertRaises(ConfigurationError):
            verl.compute_score("anneval", fenced(variant(BRUTE, "refused")), None, None,
                               **{**QUICK, "dataset": "no-such-dataset", "urls": server.url})

    def test_rows_from_datasets_and_lists_from_omegaconf(self):
        # `datasets` fills keys other rows have with None: not an override.
        reward = reward_function(server.url, **QUICK)
        rewards, _, _ = trl_call(reward, ["p"], [fenced(variant(BRUTE, "none-row"))],
                                 anneval=[{"ef": None, "max_queries": None}])
        self.assertGreater(rewards[0], 0.0)
        with self.assertRaisesRegex(ConfigurationError, "'efs' is not a scoring option"):
            trl_call(reward, ["p"], [fenced(variant(BRUTE, "typo-row"))], anneval=[{"efs": [10]}])

        class ListLike:  # what OmegaConf's ListConfig is to json: not a list
            def __init__(self, items):
                self.items = items

            def __iter__(self):
                return iter(self.items)

        self.assertEqual(plain({"ef": ListLike([10, 40]), "params": {"m": "8"}}),
                         {"ef": [10, 40], "params": {"m": "8"}})
        r = verl.compute_score("anneval", fenced(variant(BRUTE, "listlike")), None, None,
                               **{**QUICK, "ef": ListLike([10, 40]), "urls": server.url,
                                  "reward_router_address": "http://rm:8000", "reward_model_tokenizer": object()})
        self.assertTrue(0.0 < r["score"] < 1.0, r)

    def test_the_options_are_the_services(self):
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml")) as f:
            spec = f.read()
        options = spec[spec.index("    Options:"):spec.index("    Evaluation:")]
        for name in SCORING_OPTIONS:
            if name != "language":
                self.assertIn(f"        {name}:", options, name)


class Batches(unittest.TestCase):
    def test_groups_are_kept_together_and_split_to_the_limit(self):
        client = AnnevalClient(server.url, max_batch=4)
        groups = [[variant(BRUTE, f"g{g}-{i}") for i in range(3)] for g in range(3)]
        answers = client.score_groups(groups, **QUICK)
        batch_of = [[client.evaluation(a["id"])["request"]["batch"] for a in group] for group in answers]
        for group in batch_of:
            self.assertEqual(len(set(group)), 1, "a group in one batch")
        self.assertEqual(len({group[0] for group in batch_of}), 3, "3 + 3 > 4: one batch per group")
        self.assertTrue(all(a["verdict"] == "ok" for group in answers for a in group))


class Verl(unittest.TestCase):
    kwargs = {"urls": None, **QUICK}

    def setUp(self):
        self.kwargs = {**QUICK, "urls": server.url}

    def test_per_sample_calls_from_many_actors(self):
        # verl's Reward Loop scores one sample per call, concurrently.
        results = [None] * 4
        texts = [fenced(variant(BRUTE, f"verl{i}")) for i in range(3)] + ["no kernel here"]

        def call(i):
            results[i] = verl.compute_score(
                data_source="anneval", solution_str=texts[i], ground_truth=None, extra_info={"index": i},
                **self.kwargs,
            )

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        for r in results[:3]:
            self.assertTrue(0.0 < r["score"] < 1.0, r)
            self.assertEqual((r["anneval_ok"], r["anneval_service_error"]), (1.0, 0.0))
        self.assertEqual(results[3]["score"], -1.0)
        self.assertEqual(results[3]["anneval_no_code"], 1.0)
        self.assertEqual(set(results[0]), set(results[3]), "the same keys for every sample")

    def test_async_per_sample(self):
        self.assertTrue(inspect.iscoroutinefunction(verl.compute_score_async))
        r = asyncio.run(verl.compute_score_async("anneval", fenced(variant(BRUTE, "verl-async")), None, None,
                                                 **self.kwargs))
        self.assertTrue(0.0 < r["score"] < 1.0, r)

    def test_batch_form(self):
        texts = [fenced(variant(BRUTE, "vb0")), fenced(variant(BRUTE, "vb1")), "none"]
        got = verl.compute_score_batch(
            data_sources=["anneval"] * 3, solution_strs=texts, ground_truths=[None] * 3,
            extra_infos=[{"index": 0}, {"index": 0}, {"index": 1}], **self.kwargs,
        )
        self.assertEqual(len(got), 3)
        self.assertTrue(all(0.0 < g["score"] < 1.0 for g in got[:2]), got)
        self.assertEqual(got[2]["score"], -1.0)


class Axolotl(unittest.TestCase):
    def test_a_module_level_function_configured_from_the_environment(self):
        os.environ["ANNEVAL_URLS"] = server.url
        os.environ["ANNEVAL_OPTIONS"] = json.dumps(QUICK)
        try:
            from anneval import axolotl

            self.assertGreaterEqual(len(inspect.signature(axolotl.reward).parameters), 2)
            rewards = axolotl.reward(["p", "p"], [fenced(variant(BRUTE, "axolotl")), "nothing"],
                                     completion_ids=[[1], [2]])
        finally:
            del os.environ["ANNEVAL_URLS"], os.environ["ANNEVAL_OPTIONS"]
        self.assertTrue(0.0 < rewards[0] < 1.0, rewards)
        self.assertEqual(rewards[1], -1.0)


class OpenRlhf(unittest.TestCase):
    def test_get_reward_with_openrlhfs_json(self):
        prompt = "<|im_start|>user\nFaster, please:\n```rust\n" + BRUTE + "```<|im_end|>\n<|im_start|>assistant\n"
        queries = [
            prompt + fenced(variant(BRUTE, "openrlhf")) + "<|im_end|>",
            prompt + "The kernel above is fine.<|im_end|>",  # only the prompt's code
            prompt + "```rust\nfn broken(\n```<|im_end|>",
        ]
        body = {"query": queries, "prompts": [prompt] * 3, "labels": ["", "", ""]}
        query = "dataset=random-xs-20-euclidean&ef=10,40&runs=1&fuel=false&max_queries=100&penalty=-0.5"
        request = urllib.request.Request(f"{server.url}/get_reward?{query}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=180) as response:
            answer = json.loads(response.read())
        self.assertEqual(len(answer["rewards"]), 3)
        self.assertTrue(0.0 < answer["rewards"][0] < 1.0, answer)
        self.assertEqual(answer["rewards"][1:], [-0.5, -0.5])
        self.assertEqual(answer["verdicts"], ["ok", "no_code", "compile_error"])
        self.assertEqual(answer["scores"][1:], [0.0, 0.0])
        for name, values in answer["extra_logs"].items():
            self.assertEqual(len(values), 3, name)
            self.assertTrue(all(isinstance(v, float) for v in values), name)


class Exemplars(unittest.TestCase):
    def test_the_pool_after_the_others(self):
        client = AnnevalClient(server.url)
        client.score_groups([[variant(BRUTE, "pool-a"), variant(BRUTE, "pool-b")]], **QUICK)
        pool = client.exemplars(limit=5, **QUICK)
        self.assertGreaterEqual(len(pool), 1)
        rewards = [e["normalized_reward"] for e in pool]
        self.assertEqual(rewards, sorted(rewards, reverse=True))
        # Comment variants of one kernel are one exemplar, ranked by the
        # median of its measurements.
        scans = [e for e in pool if "variant" in e["source"]]
        self.assertEqual(len(scans), 1, [e["source"][-30:] for e in pool])
        self.assertGreaterEqual(scans[0]["measurements"], 2)
        for key in ("max_recall", "qps_at_recall", "frontier"):
            self.assertIn(key, scans[0]["summary"])
        self.assertEqual(client.exemplars(language="cpp", **{**QUICK, "runs": 2}), [])


if __name__ == "__main__":
    unittest.main()
