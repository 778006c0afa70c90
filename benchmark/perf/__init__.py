"""Performance scripts: each module ``benchmark/perf/<topic>.py`` defines ``run(quick: bool) -> list[Figure]``.

``python -m benchmark.perf <topic>`` runs one topic, ``python -m benchmark.perf all`` runs every topic and
writes docs/PERFORMANCE.md. Speed targets are checked here, by printed figures and ratios against a
baseline measured in the same run, never by timed assertions in tests.
"""
