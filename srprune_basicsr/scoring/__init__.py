"""Stage 2, scoring: the scorer registry, one module per scorer, the dataset pass, the runner, the PSNR tracker."""
