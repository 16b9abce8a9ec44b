"""The Models tab: the models a task produced and the ones it used."""
