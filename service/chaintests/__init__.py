"""Chain tests: examples with expectations, kept in the chain file beside the prompt they pin.

``spec`` is the ``tests:`` syntax, ``loading`` its load-time checks, ``checks`` the assertions,
``runner`` runs tests concurrently, ``report`` and ``junit`` show the outcome, ``command`` is
``chainserve test``. Nothing is imported here: ``service.chains.spec`` imports ``spec`` while it is
itself being imported, so this package must stay free of the rest of the service.
"""
