"""Finding the candidate kernel in what a model wrote.

The rules are those of the service's own extraction (``POST /get_reward``,
``host/src/serve/extract.rs``); both are checked against the same cases
(``tests/data/extraction.json``):

- a block is fenced: three backticks, a tag of letters, digits and ``_+-``,
  optionally spaces and a file name (letters, digits and ``_.+/-``), optional
  spaces, a newline, the code, three backticks;
- a C or C++ kernel of several files: when blocks of the language (or tagged
  ``h``/``hpp``) name files, one of them the kernel's (``kernel.cpp``,
  ``kernel.c``) and another any other, the kernel is those named blocks, a
  dict of name to code (the last block of each name wins);
- otherwise the last block tagged with the language wins; failing that, the
  last block that looks like a kernel of that language;
- code the prompt already holds is never credited: the text after the prompt
  is searched when the prompt is found in it, and otherwise blocks found
  verbatim in the prompt are skipped;
- for a template's codebase (``template`` in the options), a completion is
  its named blocks of C or C++ (``cpp``, ``c``, ``h``, ``hpp``...): a dict of
  the files it changes (the last block of each name wins);
- in a conversation, only the assistant's messages count (a tool's answer
  that follows may quote code, and is not the model's), the last one with a
  kernel first; content may be a string or a list of ``{"type": "text",
  "text": ...}`` parts.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "completion_texts", "extract_kernel", "kernel_in_text"]

# Per language: the fence tags of its blocks, and what an untagged kernel in
# it contains.
LANGUAGES = {
    "rust": (("rust", "rs"), "impl Kernel for Index"),
    "cpp": (("cpp", "c++", "cc", "cxx"), "struct Index"),
    "c": (("c",), "kernel_build("),
}

#: Per language with bundles: the kernel's file, and the extra tags a named
#: block (a header) may have.
BUNDLES = {"cpp": ("kernel.cpp", ("h", "hpp")), "c": ("kernel.c", ("h",))}

#: The fence tags of a template's files: C and C++ sources and headers.
TEMPLATE_TAGS = ("cpp", "c++", "cc", "cxx", "c", "h", "hpp")

_FENCE = "```"
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-")
_NAME_CHARS = _TAG_CHARS | set("./")


def _blocks(text):
    """Every fenced block of ``text``, in order: (tag, file name or "", code)."""
    found = []
    at = 0
    while True:
        open_ = text.find(_FENCE, at)
        if open_ < 0:
            return found
        after = open_ + len(_FENCE)
        end_tag = after
        while end_tag < len(text) and text[end_tag] in _TAG_CHARS:
            end_tag += 1
        rest = end_tag
        while rest < len(text) and text[rest] in " \t":
            rest += 1
        name_start = rest
        while rest < len(text) and text[rest] in _NAME_CHARS:
            rest += 1
        # A name follows the tag after a space.
        named = rest > name_start and name_start > end_tag > after
        name = text[name_start:rest] if named else ""
        while rest < len(text) and text[rest] in " \t":
            rest += 1
        if rest >= len(text) or text[rest] != "\n" or (rest > name_start and not name):
            at = open_ + 1
            continue
        code_start = rest + 1
        close = text.find(_FENCE, code_start)
        if close < 0:
            at = open_ + 1
            continue
        found.append((text[after:end_tag], name, text[code_start:close]))
        at = close + len(_FENCE)


def kernel_in_text(text, language="rust", prompt=None, template=False):
    """The kernel of ``language`` in ``text`` (see the module's rules): its
    code, a dict of file name to code, or None. With ``template``, the files
    the text changes in a template's codebase (a dict), or None."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    if not isinstance(text, str):
        return None
    skip = None
    if prompt and prompt.strip():
        at = text.rfind(prompt)
        if at >= 0:
            text = text[at + len(prompt):]
        else:
            skip = prompt
    credited = [
        (tag, name, code)
        for tag, name, code in _blocks(text)
        if code.strip() and (skip is None or code.strip() not in skip)
    ]
    if template:
        files = {}
        for tag, name, code in credited:
            if name and tag.lower() in TEMPLATE_TAGS:
                files[name] = code
        return files or None
    tags, marker = LANGUAGES[language]
    if language in BUNDLES:
        entry, header_tags = BUNDLES[language]
        files = {}
        for tag, name, code in credited:
            if name and (tag.lower() in tags or tag.lower() in header_tags):
                files[name] = code
        if entry in files and len(files) > 1:
            return files
    for tag, _, code in reversed(credited):
        if tag.lower() in tags:
            return code
    for _, _, code in reversed(credited):
        if marker in code:
            return code
    return None


def _content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    return ""


def completion_texts(completion):
    """The texts the model wrote in ``completion``, last first: a string is
    itself; a message, or a list of messages, gives its assistant messages'
    contents (messages without a role count as the model's)."""
    if completion is None:
        return []
    if isinstance(completion, str):
        return [completion]
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return []
    texts = []
    for message in reversed(completion):
        if isinstance(message, str):
            texts.append(message)
        elif isinstance(message, dict) and message.get("role", "assistant") == "assistant":
            texts.append(_content_text(message.get("content")))
    return texts


def extract_kernel(completion, language="rust", prompt=None, template=False):
    """The kernel in a completion (a string, a message or a list of
    messages), or None. ``prompt``, when the completion's text may start
    with it (a string), keeps the prompt's code from being credited; with
    ``template``, the files it changes in a template's codebase."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    prompt = prompt if isinstance(prompt, str) else None
    for text in completion_texts(completion):
        code = kernel_in_text(text, language, prompt, template)
        if code is not None:
            return code
    return None
