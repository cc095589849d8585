"""`python -m bench`: build (or reuse) a demo database and print figures.

BENCH_USERS (default 1,000,000) sets the size of the database, which is kept in
bench/data/ and reused by later runs.
"""

from __future__ import annotations

from bench.run import main

if __name__ == "__main__":
    main()
