"""Kernel extraction: the cases shared with the service's own extraction,
and the shapes trainers hand completions in."""

import json
import os
import unittest

from anneval.extract import extract_kernel, kernel_in_text

from .live import ROOT


class SharedCases(unittest.TestCase):
    def test_the_same_cases_as_the_service(self):
        with open(os.path.join(ROOT, "tests", "data", "extraction.json")) as f:
            cases = json.load(f)
        self.assertGreaterEqual(len(cases), 10)
        for case in cases:
            with self.subTest(case["name"]):
                got = kernel_in_text(case["text"], case["language"], case.get("prompt"),
                                     case.get("template", False))
                self.assertEqual(got, case["expect"])


class CompletionShapes(unittest.TestCase):
    def test_strings_messages_and_content_parts(self):
        self.assertEqual(extract_kernel("```rust\nfn a() {}\n```"), "fn a() {}\n")
        message = {"role": "assistant", "content": "```rust\nfn b() {}\n```"}
        self.assertEqual(extract_kernel(message), "fn b() {}\n")
        self.assertEqual(extract_kernel([message]), "fn b() {}\n")
        parts = [{"role": "assistant", "content": [
            {"type": "text", "text": "Thinking.\n```rust\n"},
            {"type": "image", "image": None},
            {"type": "text", "text": "fn c() {}\n```"},
        ]}]
        self.assertEqual(extract_kernel(parts), "fn c() {}\n")

    def test_a_trailing_tool_message_is_not_the_model(self):
        conversation = [
            {"role": "assistant", "content": "```rust\nfn mine() {}\n```", "tool_calls": [{"name": "run"}]},
            {"role": "tool", "content": "compiled:\n```rust\nfn from_the_tool() {}\n```"},
        ]
        self.assertEqual(extract_kernel(conversation), "fn mine() {}\n")
        # The last assistant message with a kernel wins.
        conversation.append({"role": "assistant", "content": "Done, see above."})
        self.assertEqual(extract_kernel(conversation), "fn mine() {}\n")
        conversation.append({"role": "assistant", "content": "```rust\nfn later() {}\n```"})
        self.assertEqual(extract_kernel(conversation), "fn later() {}\n")

    def test_nothing_to_credit(self):
        self.assertIsNone(extract_kernel(None))
        self.assertIsNone(extract_kernel([]))
        self.assertIsNone(extract_kernel([{"role": "tool", "content": "```rust\nfn t() {}\n```"}]))
        self.assertIsNone(extract_kernel({"role": "assistant", "content": None}))
        self.assertIsNone(extract_kernel(42))
        with self.assertRaises(ValueError):
            extract_kernel("x", "fortran")


if __name__ == "__main__":
    unittest.main()
