"""Chain files, from YAML to runnable: spec → loader → catalog, with inputs and rendering.

``spec`` is the format, ``loader`` turns a file into a spec (errors at ``file:line``, worded
by ``error_texts``; ``guarded`` loads reloads in child processes), ``catalog`` holds the
chains being served, ``inputs`` validates requests, ``runnable`` builds the LangChain chain,
``render`` shows its prompt.
"""
