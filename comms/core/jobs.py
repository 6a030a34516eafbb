"""Enqueue background work by the actor's name.

Each app's ``tasks.py`` declares its actors and imports the services they run; services never
import ``tasks.py`` back. What a service wants done later it asks for by the actor's name (the
name is what the broker carries anyway), so the two point one way and no import hides in a
function body. The actor is looked up on the broker; in a process that has not imported the
tasks modules yet (a web worker) they are imported once, as ``rundramatiq`` does at start.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.errors import ActorNotFound

from comms.core.inprocess import load_task_modules

_loaded = threading.Lock()

Arg = int | str | list[int]


def actor(name: str) -> Any:
    """The dramatiq actor called ``name`` (raises ``ActorNotFound`` for a name no app declares)."""
    broker = dramatiq.get_broker()
    try:
        return broker.get_actor(name)
    except ActorNotFound:
        with _loaded:
            load_task_modules()
        return broker.get_actor(name)


def enqueue(name: str, *args: Arg, delay_ms: int | None = None) -> None:
    """Send one message to the actor ``name`` with ``args`` (ids and other JSON primitives)."""
    if delay_ms is None:
        actor(name).send(*args)
    else:
        actor(name).send_with_options(args=args, delay=delay_ms)
