"""Training: the config, the loop on the sentence-transformers Trainer, checkpoints, the loss adapter,
mined and refreshed hard negatives."""
