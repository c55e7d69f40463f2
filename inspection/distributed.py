"""Training on several processes: ``torchrun`` plus DistributedDataParallel, or one process as usual.

``torchrun`` starts one process per GPU (or several on a CPU machine) and sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; without them (or with ``WORLD_SIZE=1``) every helper here
is a no-op. The contract the training loop keeps:

- every rank loads the same data and builds the same model from the same seed;
- each epoch's shuffled order is the same on every rank, and rank ``r`` of ``W`` takes batches ``r``, ``r+W``,
  ``r+2W`` ... of it, so the ranks' shares are disjoint (``shard_batches``);
- rank 0 alone validates, logs, tracks and writes files; what it decides after an epoch (the metrics, whether
  the time budget is spent) reaches the other ranks as JSON (``broadcast_json``), so all stop together.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Cluster:
    """Where this process stands among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs and writes."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def cluster_from_env() -> Cluster:
    """The ranks ``torchrun`` set in the environment (rank 0 of 1 when not launched by it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Cluster()
    return Cluster(
        rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")), world_size=world
    )


def start_process_group(device: torch.device) -> Cluster:
    """Join the process group ``torchrun`` set up (gloo on CPU, nccl on CUDA); no-op for one process."""
    cluster = cluster_from_env()
    if not cluster.active:
        return cluster
    if dist.is_initialized():  # a caller set it up: use it, and leave tearing it down to the caller
        return cluster
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return Cluster(cluster.rank, cluster.local_rank, cluster.world_size, owns_group=True)


def stop_process_group(cluster: Cluster) -> None:
    if cluster.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_batches(
    order: np.ndarray, batch_size: int, steps: int, rank: int, world_size: int
) -> list[np.ndarray]:
    """This rank's ``steps`` batches of ``order``: batch ``s`` is global batch ``s * world_size + rank``.

    When ``order`` is shorter than ``steps * batch_size * world_size`` it is repeated to fill the batches, so no
    rank gets an empty or short batch (a tiny dataset on many processes).
    """
    need = steps * batch_size * world_size
    if len(order) < need:
        order = np.resize(order, need)
    return [
        order[(s * world_size + rank) * batch_size : (s * world_size + rank + 1) * batch_size]
        for s in range(steps)
    ]


def broadcast_json(obj: Any, cluster: Cluster, device: torch.device) -> Any:
    """Rank 0's ``obj`` on every rank, as UTF-8 JSON in a tensor (broadcast_object_list would pickle)."""
    if not cluster.active:
        return obj
    # nccl moves only CUDA tensors; gloo only CPU ones.
    size = torch.zeros(1, dtype=torch.int64, device=device)
    payload = json.dumps(obj).encode() if cluster.is_main else b""
    if cluster.is_main:
        size[0] = len(payload)
    dist.broadcast(size, src=0)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if cluster.is_main:
        buf.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buf, src=0)
    return json.loads(bytes(buf.cpu().tolist()).decode())


def mean_over_ranks(value: torch.Tensor, cluster: Cluster) -> float:
    """The mean of a scalar tensor across ranks (itself for one process)."""
    if cluster.active:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= cluster.world_size
    return float(value.item())


def sync_buffers(model: torch.nn.Module, cluster: Cluster) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), which DDP syncs only before each forward pass.

    After an epoch's last step each rank's statistics come from its own batch; this keeps the ranks' models,
    and so what each would save, identical.
    """
    if cluster.active:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)
