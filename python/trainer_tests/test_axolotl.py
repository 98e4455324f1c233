"""anneval.axolotl inside Axolotl's own code (axolotl 0.19.0, which pins
trl 1.9.0: its own virtual environment, .venv-axolotl, pinned in
python/trainer_tests/requirements-axolotl.txt): the book's configuration
read into Axolotl's config type, its GRPO strategy importing the reward
function by name, and the TRL GRPOTrainer it drives training a step and
scoring completions with its own _calculate_rewards."""

import json
import os
import shlex
import unittest

import yaml

from tests.live import BRUTE, REFERENCE, fenced, variant

from .tiny import MEASURED, grpo_config, live, book_block, setUpModule, tearDownModule, tiny_model, tokenizer  # noqa: F401



class Axolotl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from axolotl.core.trainers.grpo import GRPOStrategy
        from axolotl.utils.dict import DictDefault
        from datasets import Dataset
        from trl import GRPOTrainer

        # The book's environment, with this test's service and options.
        env = {}
        for line in book_block("serve/axolotl.md", "sh trainer=axolotl").splitlines():
            name, value = shlex.split(line.removeprefix("export "))[0].split("=", 1)
            env[name] = value
        assert json.loads(env["ANNEVAL_OPTIONS"])["dataset"] == "random-s-100-euclidean", env
        assert env["ANNEVAL_URLS"].startswith("http://box-1"), env
        os.environ.update({"ANNEVAL_URLS": live.server.url, "ANNEVAL_OPTIONS": json.dumps(MEASURED)})
        cfg = DictDefault(yaml.safe_load(book_block("serve/axolotl.md", "yaml trainer=axolotl")))
        (cls.reward_funcs,) = GRPOStrategy.set_trainer_args(cfg)
        cls.tokenizer = tokenizer()
        cls.dataset = Dataset.from_list([{"prompt": "Write a faster kernel."}] * 4)
        args = grpo_config()
        cls.trainer = GRPOTrainer(
            model=tiny_model(len(cls.tokenizer)), processing_class=cls.tokenizer,
            reward_funcs=cls.reward_funcs, args=args, train_dataset=cls.dataset,
        )

    def test_its_strategy_imports_the_function_the_book_names(self):
        import anneval.axolotl

        self.assertEqual(self.reward_funcs, [anneval.axolotl.reward])

    def test_training_steps_log_the_penalty_for_completions_without_a_kernel(self):
        self.trainer.train()
        self.assertEqual(self.trainer.state.global_step, 2)
        logged = {k: v for entry in self.trainer.state.log_history for k, v in entry.items()}
        self.assertEqual(logged["rewards/anneval/mean"], -1.0, logged)
        self.assertEqual(logged["anneval/no_code"], 1.0, logged)

    def test_its_own_reward_calculation_credits_a_kernel(self):
        rows = [self.dataset[i] for i in range(3)]
        completions = [fenced(variant(REFERENCE, "axolotl")), "none", fenced(variant(BRUTE, "axolotl"))]
        ids = [self.tokenizer(c)["input_ids"] for c in completions]
        rewards = self.trainer._calculate_rewards(rows, [r["prompt"] for r in rows], completions, ids)
        rewards = [r[0] for r in rewards.tolist()]
        self.assertTrue(0.5 < rewards[0] < 2.0, rewards)
        self.assertEqual(rewards[1], -1.0)
        self.assertTrue(0.0 < rewards[2] < 1.0, rewards)


if __name__ == "__main__":
    unittest.main()
