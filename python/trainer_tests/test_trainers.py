"""The adapters inside the trainers' own code, at the versions pinned in
python/trainer_tests/requirements.txt (installed by scripts/setup into
.venv-trainers): a real TRL GRPOTrainer trains a step with our reward
function and scores completions with its own _calculate_rewards; verl loads
the book's configuration with its own Hydra config and reward loader and
its NaiveRewardManager scores a DataProto; OpenRLHF's own HTTP executor
posts to /get_reward with the book's URL, split as its CLI splits it.
Model and tokenizer are tiny and made here (no hub)."""

import asyncio
import os
import re
import unittest

import numpy as np
import torch
from omegaconf import OmegaConf

from anneval.rewards import ConfigurationError
from tests.live import BRUTE, QUICK, REFERENCE, fenced, variant

from .tiny import MEASURED, book_block, grpo_config, live, setUpModule, tearDownModule, tiny_model, tokenizer  # noqa: F401



class Trl(unittest.TestCase):
    """trl's GRPOTrainer with anneval.trl's functions as its reward_funcs."""

    @classmethod
    def setUpClass(cls):
        from datasets import Dataset
        from trl import GRPOTrainer

        from anneval.trl import async_reward_function, reward_function

        cls.tokenizer = tokenizer()
        # Rows as a dataset holds them: `datasets` gives a row without a
        # key the other rows' dicts have None for it.
        cls.dataset = Dataset.from_list([
            {"prompt": "Write a faster kernel.", "anneval": {"ef": [20]}},
            {"prompt": "Write a faster kernel.", "anneval": {"max_queries": 50}},
        ] * 2)
        cls.sync = reward_function(live.server.url, **MEASURED)
        cls.async_ = async_reward_function(live.server.url, name="anneval_async", **MEASURED)
        args = grpo_config()
        cls.trainer = GRPOTrainer(
            model=tiny_model(len(cls.tokenizer)), processing_class=cls.tokenizer,
            reward_funcs=[cls.sync, cls.async_], args=args, train_dataset=cls.dataset,
        )

    def test_training_steps_log_the_penalty_for_completions_without_a_kernel(self):
        self.trainer.train()
        self.assertEqual(self.trainer.state.global_step, 2)
        logged = {k: v for entry in self.trainer.state.log_history for k, v in entry.items()}
        # A random model writes no kernel: every completion gets the penalty.
        self.assertEqual(logged["rewards/anneval_random_xs_20_euclidean/mean"], -1.0, logged)
        self.assertEqual(logged["rewards/anneval_async/mean"], -1.0, logged)
        self.assertEqual(logged["anneval_random_xs_20_euclidean/no_code"], 1.0, logged)

    def test_the_books_block_makes_a_trainer_that_trains(self):
        block = book_block("serve/trl.md", "python trainer=trl")
        # The book's service and options are the user's; the test's are here.
        for user, ours in [
            ('["http://box-1:8080", "http://box-2:8080"]', repr([live.server.url])),
            ('dataset="random-s-100-euclidean", max_queries=1000',
             ", ".join(f"{k}={v!r}" for k, v in MEASURED.items())),
        ]:
            self.assertIn(user, block)
            block = block.replace(user, ours, 1)
        names = {
            "model": tiny_model(len(self.tokenizer)), "tokenizer": self.tokenizer,
            "args": grpo_config(), "dataset": self.dataset,
        }
        exec(compile(block, "docs/src/serve/trl.md", "exec"), names)
        names["trainer"].train()
        self.assertEqual(names["trainer"].state.global_step, 2)
        logged = {k: v for e in names["trainer"].state.log_history for k, v in e.items()}
        self.assertEqual(logged["rewards/anneval_random_xs_20_euclidean/mean"], -1.0, logged)

    def test_its_own_reward_calculation_credits_a_kernel(self):
        rows = [self.dataset[i] for i in range(4)]
        prompts = [r["prompt"] for r in rows]
        completions = [
            fenced(variant(REFERENCE, "trl-a")), fenced(variant(REFERENCE, "trl-b")),
            "I cannot write one.", fenced(variant(BRUTE, "trl-c")),
        ]
        ids = [self.tokenizer(c)["input_ids"] for c in completions]
        rewards = self.trainer._calculate_rewards(rows, prompts, completions, ids).tolist()
        for sync, async_ in rewards[:2]:
            self.assertGreater(sync, 0.5, rewards)
            self.assertLess(sync, 2.0, rewards)
            self.assertGreater(async_, 0.5, rewards)
        self.assertEqual(rewards[2], [-1.0, -1.0])
        self.assertTrue(0.0 < rewards[3][0] < 1.0, "a scan is slower than the reference")

    def test_a_refused_request_stops_the_step_instead_of_missing_rewards(self):
        from anneval.trl import reward_function

        refused = reward_function(live.server.url, **{**QUICK, "dataset": "no-such-dataset"})
        trainer = self.trainer
        saved = trainer.reward_funcs, trainer.reward_func_names, trainer.reward_processing_classes
        trainer.reward_funcs, trainer.reward_func_names = [refused], [refused.__name__]
        trainer.reward_processing_classes = [None]
        try:
            with self.assertRaisesRegex(ConfigurationError, "no-such-dataset"):
                trainer._calculate_rewards([self.dataset[0]], ["p"], [fenced(variant(BRUTE, "refused"))], [[1]])
        finally:
            trainer.reward_funcs, trainer.reward_func_names, trainer.reward_processing_classes = saved


class Verl(unittest.TestCase):
    """verl's own config (Hydra), reward loader and NaiveRewardManager."""

    def config(self, book_yaml, *overrides):
        import verl
        from hydra import compose, initialize_config_dir

        config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            config = compose(config_name="ppo_trainer", overrides=list(overrides))
        OmegaConf.set_struct(config, False)
        return OmegaConf.merge(config, OmegaConf.create(book_yaml))

    def data(self, tok, responses, extra_info=None):
        from verl import DataProto

        prompt = tok("Write a faster kernel.")["input_ids"]
        encoded = [tok(r)["input_ids"] for r in responses]
        width = max(len(e) for e in encoded)
        pad = tok.pad_token_id
        rows = torch.tensor([e + [pad] * (width - len(e)) for e in encoded])
        mask = torch.tensor([[1] * len(prompt) + [1] * len(e) + [0] * (width - len(e)) for e in encoded])
        n = len(responses)
        return DataProto.from_dict(
            tensors={"prompts": torch.tensor([prompt] * n), "responses": rows, "attention_mask": mask},
            non_tensors={
                "data_source": np.array(["anneval"] * n, dtype=object),
                "reward_model": np.array([{"ground_truth": ""} for _ in range(n)], dtype=object),
                "extra_info": np.array([dict(extra_info or {}) for _ in range(n)], dtype=object),
            },
        )

    def manager(self, name="compute_score", overrides=(), **kwargs):
        from verl.trainer.ppo.reward import load_reward_manager

        yaml = book_block("serve/verl.md", "yaml trainer=verl").replace("compute_score ", f"{name} ", 1)
        config = self.config(yaml, *overrides)
        self.assertEqual(config.reward.custom_reward_function.path, "pkg://anneval.verl")
        self.assertIn("box-1", config.reward.custom_reward_function.reward_kwargs.urls)
        # The book's service and dataset are the user's; the test's are here.
        config.reward.custom_reward_function.reward_kwargs = OmegaConf.create(
            {"urls": live.server.url, **QUICK, **kwargs})
        tok = tokenizer()
        return load_reward_manager(config, tok), tok

    def run_single(self, manager, data):
        # On the event loop the manager took when it was made, as verl's
        # reward loop worker runs it.
        return manager.loop.run_until_complete(manager.run_single(data))

    def test_the_book_configuration_scores_with_the_naive_manager(self):
        manager, tok = self.manager()
        self.assertEqual(type(manager).__name__, "NaiveRewardManager")
        good = self.run_single(manager, self.data(tok, [fenced(variant(REFERENCE, "verl"))]))
        self.assertGreater(good["reward_score"], 0.5, good)
        self.assertLess(good["reward_score"], 2.0, good)
        self.assertEqual(good["reward_extra_info"]["anneval_ok"], 1.0)
        none = self.run_single(manager, self.data(tok, ["no kernel here"]))
        self.assertEqual(none["reward_score"], -1.0)
        self.assertEqual(none["reward_extra_info"]["anneval_no_code"], 1.0)

    def test_async_scores_and_a_row_options(self):
        manager, tok = self.manager("compute_score_async")
        self.assertTrue(manager.is_async_reward_score)
        # A row read from parquet holds numpy arrays and scalars.
        row = {"anneval": {"ef": np.array([20]), "max_queries": np.int64(100)}}
        data = self.data(tok, [fenced(variant(BRUTE, "verl-async"))], row)
        result = self.run_single(manager, data)
        self.assertTrue(0.0 < result["reward_score"] < 1.0, result)

    def test_the_rate_limited_manager_with_its_timeout_above_the_clients(self):
        # As the book says: verl's own timeout (reward.timeout, 300 s by
        # default) above the client's (reward_kwargs.timeout), so that a
        # slow service is the client's error (flagged penalty), not verl's 0.
        manager, tok = self.manager(
            overrides=["reward.reward_manager.name=rate_limited", "+reward.timeout=120"], timeout=60)
        self.assertEqual(type(manager).__name__, "RateLimitedRewardManager")
        self.assertEqual(manager.timeout, 120)
        result = self.run_single(manager, self.data(tok, [fenced(variant(BRUTE, "verl-limited"))]))
        self.assertTrue(0.0 < result["reward_score"] < 1.0, result)

    def test_hydra_overrides_and_lists_from_the_command_line(self):
        config = self.config(
            book_block("serve/verl.md", "yaml trainer=verl"),
            "+reward.custom_reward_function.reward_kwargs.ef=[10,40]",
            "+reward.custom_reward_function.reward_kwargs.runs=1",
        )
        kwargs = config.reward.custom_reward_function.reward_kwargs
        self.assertEqual(type(kwargs.ef).__name__, "ListConfig")
        from verl.trainer.ppo.reward import get_custom_reward_fn

        kwargs.urls = live.server.url
        kwargs.dataset, kwargs.max_queries, kwargs.fuel = "random-xs-20-euclidean", 100, False
        score = get_custom_reward_fn(config)
        result = score(data_source="anneval", solution_str=fenced(variant(BRUTE, "hydra")), ground_truth="")
        self.assertTrue(0.0 < result["score"] < 1.0, result)

    def test_an_unknown_option_raises_instead_of_penalising_every_response(self):
        manager, tok = self.manager(max_querys=10)
        with self.assertRaisesRegex(ConfigurationError, "max_querys"):
            self.run_single(manager, self.data(tok, [fenced(variant(BRUTE, "typo"))]))


class OpenRlhf(unittest.TestCase):
    """OpenRLHF's own reward executor (openrlhf.utils.agent) and its URL."""

    def endpoints(self, query):
        line = re.search(r'--reward\.remote_url "([^"]+)"', book_block("serve/openrlhf.md", "sh trainer=openrlhf")).group(1)
        self.assertIn("/get_reward?", line)
        url = line.split("/get_reward?")[0]
        self.assertTrue(url.startswith("http://box-1"), url)
        # As openrlhf/cli/train_ppo_ray.py does with --reward.remote_url.
        return f"{live.server.url}/get_reward?{query}".split(",")

    def fetch(self, endpoints, responses):
        from openrlhf.utils.agent import SingleTurnAgentExecutor

        executor = SingleTurnAgentExecutor(endpoints)
        prompt = "Write a faster kernel."
        queries = [prompt + r for r in responses]
        return asyncio.run(executor._fetch_rewards_via_http(queries, [prompt] * len(queries), [""] * len(queries)))

    def test_its_executor_gets_rewards_from_get_reward(self):
        query = "dataset=random-xs-20-euclidean&max_queries=100&ef=10%2C40&runs=1&fuel=false"
        endpoints = self.endpoints(query)
        self.assertEqual(len(endpoints), 1, "%2C keeps a list option in one endpoint")
        (answer,) = self.fetch(endpoints, [fenced(variant(REFERENCE, "openrlhf")), "no kernel"])
        self.assertGreater(answer["rewards"][0], 0.5, answer)
        self.assertEqual(answer["rewards"][1], -1.0)
        self.assertEqual(answer["extra_logs"]["anneval_ok"], [1.0, 0.0])

    def test_a_comma_in_the_url_is_two_endpoints(self):
        endpoints = self.endpoints("dataset=random-xs-20-euclidean&ef=10,40")
        self.assertEqual(len(endpoints), 2, "why the book says %2C")


if __name__ == "__main__":
    unittest.main()
