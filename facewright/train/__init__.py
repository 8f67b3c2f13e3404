"""Training pair models: architectures, data, augmentation, losses and the training loop."""
