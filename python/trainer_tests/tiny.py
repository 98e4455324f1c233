"""What the trainer tests share: the live service (each test module
imports setUpModule and tearDownModule from here), a tiny model and
tokenizer made here (no hub), TRL's GRPO settings for one CPU step, and the
book's blocks (docs/src/serve/), which the tests load with the trainers'
own loaders."""

import os
import re
import tempfile
from types import SimpleNamespace

import torch

from tests.live import BRUTE, QUICK, REFERENCE, ROOT, Server

#: The options of the tests that bound a normalised reward: QUICK measured
#: three times over, so one slow moment of the machine does not decide it.
MEASURED = {**QUICK, "runs": 3}

#: The service and a scratch folder, while a test module runs.
live = SimpleNamespace(server=None, work=None)


def setUpModule():
    torch.manual_seed(0)
    live.work = tempfile.TemporaryDirectory()
    live.server = Server()


def tearDownModule():
    live.server.stop()
    live.work.cleanup()


def grpo_config():
    """Two GRPO steps on the CPU, each of 4 completions of 8 tokens, 2 per
    prompt."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=os.path.join(live.work.name, "grpo"), per_device_train_batch_size=4, num_generations=2,
        max_completion_length=8, max_steps=2, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0,
    )

def book_block(page, info):
    """The one block of the book's page `page` (under docs/src/) fenced with
    the info string `info`; tests/docs.rs checks that every block marked
    `trainer=...` is read here."""
    with open(os.path.join(ROOT, "docs", "src", page)) as f:
        text = f.read()
    blocks = re.findall(r"^```" + re.escape(info) + r"\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) == 1, f"{page}: {len(blocks)} blocks fenced ```{info}"
    return blocks[0]


def tokenizer():
    """A byte-level BPE tokenizer trained here on kernels and prose: it
    decodes any text it encodes exactly, as a model's tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    model.train_from_iterator([REFERENCE, BRUTE, "Write a faster kernel. Here is my kernel:"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=model, eos_token="<eos>", pad_token="<pad>")


def tiny_model(vocab):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)
