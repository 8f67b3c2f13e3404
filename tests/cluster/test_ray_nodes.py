"""A chain on a Ray cluster of two nodes on this machine (Ray's own test cluster: a head with 1 CPU, and a node
with 1 CPU and 1 GPU declared): every first stage runs on the GPU node, and what it returns reaches the second
stage whole, wherever Ray puts that one."""
from __future__ import annotations

import numpy as np
import pytest

SIDE = 1200  # a 5.8 MB array per item: more than Ray sends inline, so it goes through the object stores


def render_here(_: None, item: int) -> tuple[str, np.ndarray]:
    import ray

    return ray.get_runtime_context().get_node_id(), np.full((SIDE, SIDE), item, np.float32)


def composite_here(_: None, item: int, rendered: tuple[str, np.ndarray]) -> tuple[str, str, float, tuple]:
    import ray

    node, faces = rendered
    return node, ray.get_runtime_context().get_node_id(), float(faces.sum()), faces.shape


@pytest.mark.slow
def test_a_chain_on_two_nodes_renders_on_the_gpu_node_and_hands_the_faces_on(monkeypatch):
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    from facewright.cluster.ray import RayPool

    if ray.is_initialized():
        pytest.skip("another Ray is connected in this process")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        with RayPool(address=cluster.address) as pool:
            assert pool.apart and pool.workers == 2
            results = pool.chain((render_here, None), (composite_here, None), [1, 2, 3, 4])
        gpu_id = next(n["NodeID"] for n in _nodes(cluster) if n["Resources"].get("GPU"))
        assert [r[0] for r in results] == [gpu_id] * 4  # the model's stage: the GPU node only
        assert [r[2:] for r in results] == [(float(i * SIDE * SIDE), (SIDE, SIDE)) for i in (1, 2, 3, 4)]
        assert {r[1] for r in results} <= {n["NodeID"] for n in _nodes(cluster)}
        assert gpu_node is not None and not ray.is_initialized()  # close() left the cluster it joined
    finally:
        cluster.shutdown()


def _nodes(cluster) -> list[dict]:
    import ray

    ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
    try:
        return [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
