"""A notifier that writes one log line per job event."""

import logging

from avatar_daemon import JobEvent, Notice, hookimpl

log = logging.getLogger("avatar_daemon.events")


class LogNotifier:
    name = "log"

    async def notify(self, event: JobEvent) -> None:
        if event.publication is not None:  # a post's news, not the job's
            pub = event.publication
            level = logging.WARNING if pub["state"] == "failed" else logging.INFO
            log.log(level, "video %s on %s (%s): %s %s", event.job_id, pub["platform"], pub["account"], pub["state"],
                    event.message)
            return
        percent = f" {event.percent:.0f}%" if event.percent is not None and not event.state.final else ""
        level = logging.WARNING if event.state.value in ("failed", "timeout") else logging.INFO
        log.log(level, "job %s %s%s %s", event.job_id, event.state.value, percent, event.message)

    async def notice(self, notice: Notice) -> None:
        level = logging.WARNING if notice.kind.endswith((".invalid", ".error", ".missing")) else logging.INFO
        log.log(level, "%s: %s", notice.kind, notice.message)


@hookimpl
def register_notifiers(register):
    register(LogNotifier())
