"""A bounded loop in a decorator pipeline: a component is called again on its own last result
until a condition holds or a maximum number of rounds is reached. Each round is a step of its
own (`refine`, `refine_1`, ...), a child of the round before it."""

import sys

from pipelines.automation.controller import PipelineDecorator

queue, target, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])


@PipelineDecorator.component(return_values=["score"])
def refine(score):
    print("REFINING", score, flush=True)
    return score + 0.25


@PipelineDecorator.pipeline(name=f"decorator loop {target}", project="examples", version="1")
def logic(start, target, rounds):
    score = start
    for done in range(1, rounds + 1):
        score = refine(score)
        if score >= target:  # using the result waits for its round
            print(f"REACHED {score} AFTER {done}", flush=True)
            return
    print(f"GAVE UP AT {score} AFTER {rounds}", flush=True)


if __name__ == "__main__":
    PipelineDecorator.set_default_execution_queue(queue)
    PipelineDecorator.run_locally()
    logic(start=0.0, target=target, rounds=rounds)
