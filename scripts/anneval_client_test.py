"""Tests of anneval_client.py: extraction on its own, scoring against a live
`anneval serve` at $ANNEVAL_URL (tests/serve.rs starts one and runs this)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anneval_client import AnnevalClient, AnnevalError, extract_kernel, extract_rust, make_reward_fn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BRUTE = open(os.path.join(ROOT, "guest-template", "variants", "brute_force.rs")).read()
CPP_REFERENCE = open(os.path.join(ROOT, "guest-template-cpp", "kernel.cpp")).read()
OPTIONS = {"ef": [10, 40], "runs": 1, "fuel": False, "max_queries": 100}


class Extraction(unittest.TestCase):
    def test_last_rust_block_wins(self):
        text = "Plan:\n```python\nprint()\n```\nFirst try:\n```rust\nfn a() {}\n```\nFinal:\n```rust\nfn b() {}\n```\n"
        self.assertEqual(extract_rust(text), "fn b() {}\n")

    def test_chat_messages_and_untagged_kernels(self):
        msg = [{"role": "user", "content": "write it"},
               {"role": "assistant", "content": "```\nimpl Kernel for Index {}\n```"}]
        self.assertEqual(extract_rust(msg), "impl Kernel for Index {}\n")
        self.assertIsNone(extract_rust("no code here"))
        self.assertIsNone(extract_rust("```text\nnot rust\n```"))

    def test_cpp_and_c_blocks(self):
        text = "```rust\nfn a() {}\n```\n```cpp\nstruct Index {};\n```\n```c\nint x;\n```"
        self.assertEqual(extract_kernel(text, "cpp"), "struct Index {};\n")
        self.assertEqual(extract_kernel(text, "c"), "int x;\n")
        self.assertEqual(extract_kernel(text, "rust"), "fn a() {}\n")
        self.assertEqual(extract_kernel("```\nstruct Index { };\n```", "cpp"), "struct Index { };\n")
        self.assertIsNone(extract_kernel("```rust\nfn a() {}\n```", "cpp"))
        with self.assertRaises(ValueError):
            make_reward_fn(language="fortran")


@unittest.skipUnless(os.environ.get("ANNEVAL_URL"), "needs a live server at $ANNEVAL_URL")
class Live(unittest.TestCase):
    def setUp(self):
        self.client = AnnevalClient(os.environ["ANNEVAL_URL"])

    def test_rewards_in_order_with_penalties(self):
        reward = make_reward_fn(client=self.client, penalty=-2.0, **OPTIONS)
        completions = [
            "Here is a scan:\n```rust\n" + BRUTE + "```",
            "```rust\nthis does not compile\n```",
            "I could not write it.",
        ]
        rewards = reward(completions, prompts=["p"] * 3)
        self.assertEqual(len(rewards), 3)
        self.assertGreater(rewards[0], 0.0)
        self.assertLess(rewards[0], 1.0, "a scan is slower than the reference HNSW")
        self.assertEqual(rewards[1:], [-2.0, -2.0])

    def test_raw_rewards_and_single_scores(self):
        raw = make_reward_fn(client=self.client, normalized=False, **OPTIONS)(["```rust\n" + BRUTE + "```"])
        self.assertGreater(raw[0], 100.0, "queries per second")
        one = self.client.score(BRUTE, **OPTIONS)
        self.assertEqual(one["verdict"], "ok")
        again = self.client.score(BRUTE, **OPTIONS)
        self.assertTrue(again["cached"])
        self.assertEqual(self.client.evaluation(one["id"])["status"], "done")

    def test_cpp_kernels(self):
        one = self.client.score(CPP_REFERENCE, language="cpp", **OPTIONS)
        self.assertEqual(one["verdict"], "ok", one.get("message"))
        self.assertEqual(one["candidate"]["kind"], "cpp")
        reward = make_reward_fn(client=self.client, language="cpp", **OPTIONS)
        rewards = reward(["```cpp\n" + CPP_REFERENCE + "```", "```cpp\nstruct Index;\n```"])
        self.assertGreater(rewards[0], 0.5, "the C++ reference is about as fast as the Rust one")
        self.assertEqual(rewards[1], -1.0)

    def test_service_errors_raise(self):
        with self.assertRaises(AnnevalError):
            self.client.score(BRUTE, dataset="no-such-dataset")
        with self.assertRaises(AnnevalError):
            AnnevalClient("http://127.0.0.1:9", max_retries=2).health()


if __name__ == "__main__":
    unittest.main(verbosity=2)
