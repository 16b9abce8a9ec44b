"""Results > Debug samples: images a task reported."""
