"""Class-conditional GAN for small data: networks, DiffAugment, losses, training, projection."""
