"""Bill verification and what-if repricing: read-only analyses of the billing database."""
