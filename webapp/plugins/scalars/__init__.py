"""Results > Scalars: one line chart per scalar title."""
