"""chainserve: LangChain chains defined in YAML files, served as streaming HTTP endpoints.

The data path, one stage a package: chain file → spec → runnable (``chains``) → run
(``runs``) → wire (``protocols``), behind the app built by ``app.create_app``. Beside it:
the playground page (``playground``), the workbench commands (``cli``, ``terminal``,
``chaintests``), the Lambda package (``deploy``) and the Bedrock emulator (``emulator``).
"""

__version__ = "0.1.0"
