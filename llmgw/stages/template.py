"""Render template: expand a versioned prompt template from ``prompts/`` into the messages.

Pass-through for now: the prompt-templates issue fills it in (git versions, sandboxed jinja2).
"""

from __future__ import annotations

from llmgw.stages.base import Stage


class RenderTemplate(Stage):
    name = "render_template"
    toggle = "template"

    def enabled(self) -> bool:
        return self.gateway.config.templates.enabled
