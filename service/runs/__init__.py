"""Running a chain: ``stream`` (a run on a worker thread, handed to the event loop), ``batch``
(a batch's runs, each timed on its own), ``errors`` (every failure → status and message, in one
place), ``collector`` (garbage collection between runs)."""
