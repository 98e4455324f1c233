"""What the trainer tests share: a tiny model and tokenizer made here (no
hub), and the README's blocks, which the tests load with the trainers' own
loaders."""

import os
import re

from tests.live import BRUTE, REFERENCE, ROOT

with open(os.path.join(ROOT, "README.md")) as f:
    README = f.read()


def readme_block(after, language):
    """The first ```language block of README.md after the line `after`."""
    start = README.index(after)
    match = re.compile(r"```" + language + r"\n(.*?)```", re.S).search(README, start)
    return match.group(1)


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
