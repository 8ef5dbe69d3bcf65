"""chatport's engines as replicas on Ray Serve (the optional ``ray`` extra).

The front is chatport's own server process (HTTP, auth, validation, templates, store, SSE:
``api`` and ``service`` unchanged); each model's engine runs as N replicas of a Ray Serve
deployment, each with its own llama.cpp engine. ``RayBackend`` is the ``Backend`` the
service sees: it tokenizes and checks grammars locally (a vocabulary-only load) and sends
generation to a replica through a streaming deployment handle, chosen by
``PrefixAffinityRouter`` so that prompts that share a prefix meet their KV cache again.

- ``remote.py``: what crosses between front and replicas (picklable), and the affinity key
- ``replica.py``: the deployment's class around ``LlamaBackend``
- ``router.py``: the request router (Ray Serve's public RequestRouter API)
- ``board.py``: an actor where replicas post their stats, for /metrics and the status page
- ``backend.py``: ``RayBackend`` and its ``GenerationHandle``
- ``deploy.py``: start or join Ray, deploy a model's replicas, build its ``RayBackend``
"""
