"""Exchange ids: 128 random bits as 32 hex characters, never repeated, not even by a forked child."""

from __future__ import annotations

import os
import re

from wa_devtunnel.engine.exchange import new_exchange_id

ID = re.compile(r"[0-9a-f]{32}")


def test_ids_are_32_lowercase_hex_characters_and_never_repeat_across_batches() -> None:
    ids = [new_exchange_id() for _ in range(5000)]  # many batches
    assert all(ID.fullmatch(value) for value in ids)
    assert len(set(ids)) == len(ids)
    assert len({value[:8] for value in ids}) > 4900  # random from the first character: short prefixes select


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    new_exchange_id()  # the parent holds a batch made before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        os.close(read)
        os.write(write, "".join(new_exchange_id() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    child = {text[start : start + 32] for start in range(0, len(text), 32)}
    parent = {new_exchange_id() for _ in range(300)}
    assert len(child) == 300 and not child & parent
