"""Message templates: sandboxed Jinja2 files in config/templates, zh-CN by default.

``<name>.<channel>.j2``; an e-mail template starts with a ``Subject:`` line.
Every placeholder must have a non-empty value before a message may be
planned: a missing tracking number means no send (and a suppression row), not
a message with a hole in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment


class TemplateError(ValueError):
    pass


class MissingPlaceholder(TemplateError):
    def __init__(self, template: str, missing: list[str]):
        self.missing = missing
        super().__init__(f"template {template}: no value for {', '.join(missing)}")


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


@lru_cache(maxsize=8)
def _env(folder: str) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader

    return SandboxedEnvironment(loader=FileSystemLoader(folder), undefined=StrictUndefined,
                                autoescape=False, keep_trailing_newline=False)


def template_name(message_type: str, channel: str) -> str:
    return f"{message_type}.{channel}.j2"


def placeholders(folder: Path, name: str) -> set[str]:
    env = _env(str(folder))
    try:
        source = env.loader.get_source(env, name)[0]
    except Exception as exc:
        raise TemplateError(f"template {name} not found in {folder}") from exc
    return set(_undeclared(source))


@lru_cache(maxsize=256)
def _undeclared(source: str) -> frozenset[str]:
    """Placeholders of a template source (parsed once per distinct source text)."""
    return frozenset(meta.find_undeclared_variables(_env("/").parse(source)))


def render(folder: Path, name: str, params: dict) -> Rendered:
    """Render after checking every placeholder has a non-empty value."""
    needed = placeholders(folder, name)
    missing = sorted(p for p in needed if params.get(p) in (None, ""))
    if missing:
        raise MissingPlaceholder(name, missing)
    text = _env(str(folder)).get_template(name).render(**params).strip()
    if text.startswith("Subject:"):
        first, _, rest = text.partition("\n")
        return Rendered(first[len("Subject:"):].strip(), rest.strip())
    return Rendered(None, text)
