"""Start or join Ray, deploy a model's engine replicas, and build the front's backend."""

from __future__ import annotations

import logging
import os

from chatport.engine.config import EngineConfig
from chatport.replicas.backend import RayBackend
from chatport.replicas.board import StatsBoard
from chatport.replicas.replica import EngineReplica
from chatport.replicas.router import DEFAULT_IMBALANCE, PrefixAffinityRouter
from chatport.replicas.scale import Scale

log = logging.getLogger("chatport.replicas")

NAMESPACE = "chatport"


def start_ray(address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray instance; True when started
    here (and so to be shut down here). Serve starts without its HTTP proxy: chatport's own
    front serves HTTP."""
    import ray
    from ray import serve

    if address:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        started = False
    else:
        ray.init(namespace=NAMESPACE, include_dashboard=False, log_to_driver=False, num_cpus=os.cpu_count())
        started = True
    serve.start(http_options={"location": "NoServer"})
    return started


def deploy_model(
    path: str,
    model_id: str,
    config: EngineConfig,
    scale: Scale,
    *,
    imbalance: int = DEFAULT_IMBALANCE,
    drain_seconds: float = 30.0,
) -> RayBackend:
    """Run ``model_id``'s engines as a Serve application of its own (or use the one another
    front started on the cluster) and wait until they answer. Each replica asks Ray for as
    many CPUs as it runs llama.cpp threads."""
    import ray
    from ray import serve
    from ray.serve.config import AutoscalingConfig, RequestRouterConfig

    app_name = f"chatport-{model_id}"
    board = ray.remote(StatsBoard).options(name=f"{app_name}-board", get_if_exists=True, num_cpus=0, max_restarts=-1).remote()
    threads = config.threads or 1
    options: dict[str, object] = {
        "max_ongoing_requests": config.max_seqs * 2,
        "ray_actor_options": {"num_cpus": threads},
        "health_check_period_s": 2,
        "health_check_timeout_s": 60,
        "graceful_shutdown_timeout_s": drain_seconds,
        "request_router_config": RequestRouterConfig(
            request_router_class=PrefixAffinityRouter, request_router_kwargs={"imbalance": imbalance}
        ),
    }
    if scale.replicas is None:
        # Scale up when the replicas' slots are more than half busy on average over 10 s;
        # down only after a minute below (an engine takes seconds to load).
        options["autoscaling_config"] = AutoscalingConfig(
            min_replicas=scale.minimum,
            max_replicas=scale.maximum,
            target_ongoing_requests=max(1, config.max_seqs // 2),
            look_back_period_s=10,
            upscale_delay_s=5,
            downscale_delay_s=60,
        )
    else:
        options["num_replicas"] = scale.replicas
    running = serve.status().applications.get(app_name)
    if running is not None and running.status == "RUNNING":
        # Another front deployed this model on the cluster: share its replicas.
        handle = serve.get_app_handle(app_name)
    else:
        deployment = serve.deployment(EngineReplica, name="engine").options(**options)
        handle = serve.run(deployment.bind(path, config, board), name=app_name, route_prefix=None)
    capabilities, vocabulary = handle.model_facts.remote().result()
    log.info("%s: %s engine replicas on Ray", model_id, scale.replicas or f"{scale.minimum}-{scale.maximum}")
    return RayBackend(app_name, handle, board, path, capabilities, vocabulary)
