"""Prompt templates versioned in git: files, versions, sandboxed rendering, experiments."""
