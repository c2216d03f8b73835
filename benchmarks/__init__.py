"""Studio's benchmarks: each module exposes ``run(quick: bool) -> dict[name, figure]``."""
