"""Enqueue background work by the actor's name.

Each app's ``tasks.py`` declares its actors and imports the services they run; services never
import ``tasks.py`` back. What a service wants done later it asks for by the actor's name (the
name is what the broker carries anyway), so the two point one way and no import hides in a
function body. Every process has declared every actor at start (``CoreConfig.ready``).
"""

from __future__ import annotations

from typing import Any

import dramatiq

Arg = int | str | list[int]


def actor(name: str) -> Any:
    """The dramatiq actor called ``name`` (raises ``ActorNotFound`` for a name no app declares)."""
    return dramatiq.get_broker().get_actor(name)


def enqueue(name: str, *args: Arg) -> None:
    """Send one message to the actor ``name`` with ``args`` (ids and other JSON primitives)."""
    actor(name).send(*args)
