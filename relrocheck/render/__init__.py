"""Renderers: pure functions from the data model to text, JSON-ready dicts or Markdown."""
