"""The ``pipeline-run`` command."""
