"""Read-side queries of the study app, one module per area."""
