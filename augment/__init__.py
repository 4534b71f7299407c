"""Image augmentation (Deep Image §4.1), installed as minwa.augment."""
