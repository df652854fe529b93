"""The long-running processes the supervisor runs (``python -m amr api|gateway|ha|monitord --home H``): each
sets up logging (amr.logcontext) and runs until SIGTERM."""

from __future__ import annotations

import asyncio

from amr.home import read_secret
from amr.logcontext import configure_logging
from amr.settings import Settings


def run_api(settings: Settings) -> None:
    """The control plane: ARM API over HTTPS plus the reconciler, in one process."""
    import uvicorn
    import uvloop

    from amr.api.limits import header_timeout_protocol
    from amr.app.wiring import build_control_plane
    from amr.gateway.tls import TlsContexts

    configure_logging("api", settings.log.level)
    plane = build_control_plane(settings)
    tls = TlsContexts()
    tls.set_files(str(settings.server_cert_file), str(settings.server_key_file))

    class ReloadingTlsConfig(uvicorn.Config):
        """uvicorn with our TLS context: TLS 1.2+, and a rotated certificate is served to new
        handshakes within a second without dropping open connections."""

        def load(self) -> None:
            super().load()
            self.ssl = tls.context_for("1.2")

    config = ReloadingTlsConfig(
        plane.app,
        host=settings.api.host,
        port=settings.api.port,
        ssl_certfile=str(settings.server_cert_file),
        ssl_keyfile=str(settings.server_key_file),
        loop="none",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        http=header_timeout_protocol(settings.api.header_timeout),
    )
    server = uvicorn.Server(config)

    async def refresh_certificate() -> None:
        while True:
            await asyncio.sleep(1)
            tls.refresh()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(plane.reconciler.run()), loop.create_task(refresh_certificate())]
        try:
            await server.serve()
        finally:
            for task in tasks:
                task.cancel()
            plane.store.close()

    uvloop.run(main())


def run_ha(settings: Settings) -> None:
    """The failover coordinator of HA databases; it needs the watch file and its own master secret
    (ha.secret: it can derive the `amr-ha` passwords and no other), nothing from the control plane,
    so failovers happen while the API is down."""
    from amr.ha.main import run_ha as run_coordinator

    configure_logging("ha", settings.log.level)
    run_coordinator(settings, read_secret(settings, "ha.secret"))


def run_monitor(settings: Settings) -> None:
    """The metric collector; like `amr ha` it needs the watch file and its own master secret
    (monitor.secret: the `amr-monitor` passwords and no other), so it samples while the API is down."""
    from amr.monitor.main import run_monitor as run_collector

    configure_logging("monitord", settings.log.level)
    run_collector(settings, read_secret(settings, "monitor.secret"))


def run_gateway_worker(settings: Settings) -> None:
    """One gateway process. The supervisor runs gateway.workers copies of this command; each but the
    first has its index in ``AMR_GATEWAY_WORKER_INDEX``."""
    from amr.app.args import parse_worker_index
    from amr.gateway.main import run_gateway
    from amr.logic.render.supervisor_conf import GATEWAY_WORKER_ENV, gateway_program_name
    from amr.settings import process_variable

    worker = parse_worker_index(process_variable(GATEWAY_WORKER_ENV))
    configure_logging(gateway_program_name(worker), settings.log.level)
    run_gateway(settings, worker)
