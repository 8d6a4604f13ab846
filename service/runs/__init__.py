"""Running a chain: ``stream`` (a run on a worker thread, handed to the event loop), ``errors``
(every failure → status and message, in one place), ``collector`` (garbage collection between
runs)."""
