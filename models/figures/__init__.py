"""Every figure of both problems, drawn without pyplot or a global backend."""
