"""The servers under test, each started as its own process (see :mod:`bench.contenders.catalog`)."""
