"""Routes past one machine: a provider's Batch API, and request files run offline (``vllm run-batch``).

A route sends the same requests as the online runner and checks the answers
the same way: requests come from the engine's request builder
(:meth:`structx._engine.Engine.check` with no answers, the first request of
every call) and answers go through its answer checker (``check`` with the
answers received), so validation, truncation, refusal, re-asks and grounding
are the online path's own. A re-ask is the next request the checker asks for.

Every request is named by an id derived from the run database's key of its
article and the digest of its body, so the results of a route are stored
under the keys an online run looks up: an article finished on one route is
not sent again on another, and the response cache answers across routes.
"""
