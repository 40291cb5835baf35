"""The agent API (``/agent/v1/``): everything an agent reads from or writes to the console, over HTTP.

An agent holds no database access and no encryption key, only its gateway's token. Each request carries
``Authorization: Bearer <token>`` (:mod:`.auth`) and is scoped to that token's gateway: anything of another
gateway is answered 404 and left as it is. The state changes themselves stay where they were
(:mod:`orchestrator.pulls.actions`, :mod:`orchestrator.control.store`, :mod:`orchestrator.gateways.actions`);
this package only checks who asks, validates what they send and calls them. docs/agent-api.md describes
every endpoint.
"""
