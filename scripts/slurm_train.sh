#!/usr/bin/env bash
# Multi-node Piccolo2 training under SLURM: one torchrun per node, rendezvous on the first node.
#   sbatch --nodes 2 --gres gpu:8 scripts/slurm_train.sh configs/piccolo2-large-zh.yaml [key=value ...]
#SBATCH --job-name=piccolo2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --output=runs/slurm-%j.out
set -euo pipefail
CONFIG=${1:?usage: sbatch scripts/slurm_train.sh CONFIG.yaml [key=value ...]}; shift
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
# Compute nodes often have no internet: download the backbone on a login node first, then HF_HUB_OFFLINE=1.
srun .venv/bin/torchrun \
  --nnodes "$SLURM_NNODES" --nproc_per_node "$GPUS_PER_NODE" \
  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" \
  -m piccolo_lib.cli train "$CONFIG" "$@"
