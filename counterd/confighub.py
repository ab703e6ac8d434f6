"""The config hub: the one way configuration reaches running objects.

    SIGHUP    -> load the file + validate -┐
    setparams -> lay values over the file -┴-> publish(effective config), under one lock
        -> each component applies its own sections -> "applied" | "needs restart: why"

The effective config is the config file with the setparams values (kept in the store) laid over
it. A component registers once with the sections it reads and a function that applies a change:

    hub.register("pipeline", ("lines", "counting", "tracker", "gating", "detector"), apply)

    def apply(old: Config, new: Config) -> str | None:     # may also be a coroutine function
        ...                         # take what can change at run time from `new`
        return None                 # or "detector.mosaic changed: the detector is built once"

apply() runs on the event loop and must not block (hand work to a thread, or queue it for the
component's own thread, as the inference worker does). It is called only when one of its
sections changed. Its answer is logged, and the latest one per component is shown on /healthz
under "config" (`hub.status`), so what still waits for a restart stays visible.

Submitting a change from another part of the daemon:

- a new value for a setparams parameter (the Axis API, a console form):
  `await hub.set_params(hub.overlay.parse([("Counter.Name", "Lobby")]), persist)`, where
  `persist(values)` stores the texts (the API stores them in the counts database first);
- a change to the file's settings (the console's line editor): write the file, then
  `await hub.reload()`, exactly what SIGHUP does; it returns False, with every problem logged,
  when the file is refused (the running config stays).

Changes are serialised: a second reload or setparams waits for the first to be applied.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from counterd.api.params import Settings
from counterd.config import Config, ConfigError, config_to_dict, load_config

log = logging.getLogger("counterd.config")

APPLIED = "applied"
Apply = Callable[[Config, Config], "str | None | Awaitable[str | None]"]


@dataclass(frozen=True)
class Component:
    name: str
    sections: tuple[str, ...]
    apply: Apply


def changed_keys(old: Config, new: Config, section: str) -> list[str]:
    """Dotted keys of one section that differ between two configs."""
    # revealed: a changed password in a URL or a new PIN is a change, though both print alike
    before, after = (config_to_dict(getattr(c, section), reveal=True) for c in (old, new))
    if not isinstance(before, dict) or not isinstance(after, dict):      # [[lines]], [[users]]
        return [section] if before != after else []
    return [f"{section}.{key}" for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def restart_needed(*sections: str) -> Apply:
    """For sections read once at start-up (the capture, the model, the listening socket)."""
    def apply(old: Config, new: Config) -> str | None:
        keys = [k for s in sections for k in changed_keys(old, new, s)]
        return f"{', '.join(keys)} changed; that takes effect after a restart" if keys else None
    return apply


class ConfigHub:
    def __init__(self, base: Config, *, load: Callable[[str], Config] = load_config,
                 adjust: Callable[[Config], Config] = lambda config: config):
        self.base = base                    # the config file, as loaded (and adjusted)
        self.overlay = Settings(base)       # setparams values laid over it
        self._load = load
        self._adjust = adjust               # command-line overrides, applied to each reloaded file
        self._components: list[Component] = []
        self.validators: list[Callable[[Config], None]] = []   # raise ConfigError to refuse a file
        self.status: dict[str, str] = {}    # component -> "applied" | "needs restart: why"
        self._lock = asyncio.Lock()
        self._reloads: set[asyncio.Task] = set()    # strong references until each is done

    @property
    def pending_reloads(self) -> int:
        return len(self._reloads)

    def reload_soon(self) -> asyncio.Task:
        """reload() as a task (the SIGHUP handler); it waits its turn behind any change being
        applied, and is released once done."""
        task = asyncio.create_task(self.reload(), name="counterd-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)
        return task

    @property
    def effective(self) -> Config:
        return self.overlay.config

    def register(self, name: str, sections: tuple[str, ...], apply: Apply) -> None:
        self._components.append(Component(name, sections, apply))

    def load_stored(self, stored: dict[str, str]) -> None:
        """At start-up, before anything is built: lay the stored setparams values over the file."""
        self.overlay.load(stored)

    async def reload(self) -> bool:
        """Read the config file again, validate it and publish it; False (each problem logged,
        the running config kept) when it is refused."""
        async with self._lock:
            try:
                base = self._adjust(await asyncio.to_thread(self._load, self.base.path))
                for validate in self.validators:
                    validate(base)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("reload refused: %s", problem)
                log.error("reload refused: keeping the running configuration")
                return False
            old = self.effective
            self.base = base
            await self._publish(old, self.overlay.rebase(base), "reload")
            log.info("reload: %s accepted (%d line(s), %d user(s))", base.path, len(base.lines), len(base.users))
            return True

    async def set_params(self, parsed: dict[str, tuple[object, str]],
                         persist: Callable[[dict[str, str]], Awaitable[None]]) -> Config:
        """setparams: store the values (persist), then publish the new effective config."""
        async with self._lock:
            await persist({name: text for name, (_, text) in parsed.items()})
            old = self.effective
            new = self.overlay.set(parsed)
            await self._publish(old, new, "setparams")
            return new

    async def _publish(self, old: Config, new: Config, why: str) -> None:
        for component in self._components:
            if not any(changed_keys(old, new, section) for section in component.sections):
                continue
            try:
                answer = component.apply(old, new)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:     # one component's bug must not stop the others applying
                log.exception("%s: applying the new configuration failed", component.name)
                answer = f"applying failed ({exc}); restart to apply"
            self.status[component.name] = APPLIED if answer is None else f"needs restart: {answer}"
            if answer is None:
                log.info("%s: %s applied", why, component.name)
            else:
                log.warning("%s: %s needs a restart: %s", why, component.name, answer)
