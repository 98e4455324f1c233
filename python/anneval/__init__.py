"""anneval's Python side: the client of ``anneval serve``, reward functions
for the trainers that call it (``anneval.trl``, ``anneval.verl``,
``anneval.axolotl``; OpenRLHF needs none: the service answers its
``POST /get_reward``), and a launcher of one replica per node of a Ray
cluster (``anneval.cluster``)."""

from .client import MAX_BATCH, AnnevalClient, AnnevalError, options_from_env, plan_batches
from .extract import extract_kernel, kernel_in_text

__all__ = [
    "MAX_BATCH",
    "AnnevalClient",
    "AnnevalError",
    "extract_kernel",
    "kernel_in_text",
    "options_from_env",
    "plan_batches",
]
