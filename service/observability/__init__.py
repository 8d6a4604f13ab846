"""What operators read: log lines (``logs``), metrics (``prometheus``), LangSmith traces
(``langsmith_setup``). Each is switched on by one setting and costs nothing when off."""
