"""The Configuration tab: hyperparameters (editable on a draft) and configuration objects."""
