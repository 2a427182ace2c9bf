"""Everything that touches files: inputs (``sources``, ``readers``) and outputs (``writers``)."""
