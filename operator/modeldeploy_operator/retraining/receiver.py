"""The webhook receiver Alertmanager notifies (`POST /alertmanager`), for `alertmanager` triggers.

It only hands the notification's alerts to the retraining loop and answers once a pass has
acted on them (the run created, or the suppression recorded in the policy's status): the guards
decide, as for every trigger. The answers:

- 401: no bearer token, or not the one in the token file (read on every request, so a rotated
  Secret mounted there takes effect without a restart; compared in constant time);
- 400: a body that is not an Alertmanager webhook notification (version 4);
- 503: this replica does not lead (high availability: only the leader creates runs), or the
  pass did not complete. Alertmanager retries a 5xx with backoff, and with several replicas
  behind one Service a retry reaches the leader; nothing is recorded by a standby, so there is
  one writer of a policy's status;
- 200: the alerts were acted on.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from modeldeploy_operator.retraining.alerts import Alert, MalformedNotification, parse_notification

log = logging.getLogger("modeldeploy.retraining.receiver")

PATH: Final = "/alertmanager"
# Alertmanager sends a group's alerts in one notification; a body larger than this is no
# notification of ours.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024


class NotLeading(Exception):
    """This replica stands by: the leader acts on notifications."""


class NotActedOn(Exception):
    """The pass that carried the alerts did not write every policy's plan."""


# Hands alerts to the loop; returns once a pass acted on them. Raises NotLeading, or any error
# of the pass.
Deliver = Callable[[list[Alert]], Awaitable[None]]


def _authorized(request: web.Request, token_file: Path) -> bool:
    expected = token_file.read_text().strip()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def receiver_app(deliver: Deliver, token_file: Path) -> web.Application:
    async def notify(request: web.Request) -> web.Response:
        try:
            authorized = _authorized(request, token_file)
        except OSError as err:
            log.error("cannot read the Alertmanager token file %s: %s", token_file, err)
            return web.Response(status=503, text="the receiver's token is unreadable\n")
        if not authorized:
            return web.Response(
                status=401,
                text="a bearer token is required (Alertmanager's http_config.authorization)\n",
                headers={"WWW-Authenticate": 'Bearer realm="modeldeploy"'},
            )
        try:
            alerts = parse_notification(json.loads(await request.read()))
        except (MalformedNotification, ValueError) as err:
            return web.Response(status=400, text=f"not an Alertmanager notification: {err}\n")
        try:
            await deliver(alerts)
        except NotLeading:
            return web.Response(
                status=503, text="this replica stands by; retry (the leader acts)\n"
            )
        except Exception as err:  # any failed pass: Alertmanager retries, nothing is lost
            log.warning("alerts not acted on: %r", err)
            return web.Response(status=503, text=f"not acted on yet: {err!r}\n")
        return web.json_response({"alerts": len(alerts)})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, notify)
    return app
