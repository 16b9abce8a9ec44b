"""The pipeline engine (filled in by the pipeline work)."""


def advance(run_id: str) -> None:
    return None


def advance_all_running() -> list[str]:
    return []
