"""Reporting: the weekly report (summary transform, HTML rendering, the step that runs them)."""
