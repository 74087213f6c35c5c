"""Dataset distillation for SR (Dietz et al. 2025): gradient matching, grouping, augmentation, export."""
