"""Distributed mode's commands: run a Celery worker, and see what the workers do.

connectbatch worker [--name N] [--concurrency C]   # a worker (prefork pool); never opens the database
connectbatch workers [--json]                       # workers, queue depth, tasks in flight
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading

from connectbatch import escaping
from connectbatch.cli import common as cc
from connectbatch.cli.common import EXIT_BUSY, EXIT_OK, EXIT_UNUSABLE, Command
from connectbatch.errors import TransportError
from connectbatch.settings import Settings

# What Celery's --loglevel takes: another value was an "internal error: BadParameter".
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _configure_worker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=None, help="worker name (default: the host name)")
    p.add_argument("--concurrency", type=cc.positive, default=None, help="pool processes (default: CPUs)")
    p.add_argument(
        "--loglevel",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="Celery log level (default: INFO)",
    )


def _run_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.check_usable()  # its staging, key and expectations: named at start, as every command's
    if settings.mode != "distributed":
        print("connectbatch: error: a worker needs CONNECTBATCH_MODE=distributed", file=sys.stderr)
        return EXIT_UNUSABLE
    from connectbatch.distributed.app import QUEUE, make_app
    from connectbatch.distributed.tasks import pull_deadline

    deadline, _ = pull_deadline(settings)
    if deadline < settings.pull_deadline:  # said once here, not only in each cut run's reason
        print(
            f"connectbatch: note: pulls are cut after {deadline:g} s, under CONNECTBATCH_VISIBILITY_TIMEOUT "
            f"({settings.visibility_timeout} s), not CONNECTBATCH_PULL_DEADLINE "
            f"({settings.pull_deadline:g} s); raise the visibility timeout for longer pulls",
            file=sys.stderr,
        )
    app = make_app(settings)
    name = args.name or socket.gethostname()
    argv = [
        "worker",
        "--pool=prefork",
        f"--hostname={name}@%h",
        f"--loglevel={args.loglevel}",
        f"--queues={QUEUE}",
    ]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    app.worker_main(argv)
    return EXIT_OK


def _configure_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout", type=cc.seconds_within(0.1, 600), default=1.0, metavar="S",
        help="seconds to wait for the workers' answers (default: 1)",
    )  # fmt: skip
    cc.json_flag(p)


def _run_workers(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.mode != "distributed":
        print("connectbatch: error: CONNECTBATCH_MODE is embedded: there are no workers", file=sys.stderr)
        return EXIT_UNUSABLE
    from connectbatch.distributed.workers import overview

    view = overview(settings, timeout=args.timeout)
    if args.json:
        cc.print_json(view.to_json())
        return EXIT_OK
    print(f"coordinator: {escaping.visible(view.coordinator or 'none')}")
    print(f"queue depth: {view.queue_depth}   in flight: {view.in_flight}")
    if not view.workers:
        print("no worker answered")
    for w in view.workers:
        running = ", ".join(w.tasks) or "-"
        print(f"{escaping.visible(w.name)}  active {w.active}  reserved {w.reserved}  running {running}")
    return EXIT_OK


def run_coordinator(args: argparse.Namespace, stop: threading.Event) -> int:
    """`serve --coordinator`: take the coordinator lock first (before opening the database),
    then schedule, serve and load until stopped; refuse, naming the holder, when another
    coordinator holds the lock, or with `--standby` wait for it."""
    import redis

    from connectbatch.distributed.app import make_app
    from connectbatch.distributed.coordinator import CoordinatorLock, engine_for
    from connectbatch.distributed.workers import redis_address

    settings = Settings.from_env()
    if settings.mode != "distributed":
        print("connectbatch: error: --coordinator needs CONNECTBATCH_MODE=distributed", file=sys.stderr)
        return EXIT_UNUSABLE
    lock = CoordinatorLock(redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5))
    try:  # an unreachable Redis was an "internal error: ConnectionError" (exit 3)
        acquired = lock.acquire()
        holder = "" if acquired else escaping.visible(lock.current_holder() or "another process")
        dead = not acquired and lock.left_by_the_dead()
    except redis.RedisError as exc:
        cause = str(exc).rstrip(".")
        raise TransportError(
            f"Redis cannot be reached at {redis_address(settings.redis_url)}: {cause}; start it, "
            "or set CONNECTBATCH_REDIS_URL to the Redis the workers use"
        ) from None
    if dead:  # this host's coordinator, killed: we refused for the lock's 15 s (a service
        # manager restarting us quickly could give up); its lock, no longer renewed, expires
        print(
            f"coordinator lock left by {holder}, a process that is gone; waiting for it to expire", flush=True
        )
        acquired = lock.wait(stop, timeout=lock.ttl_ms / 1000 + 2)
        if stop.is_set():
            return EXIT_OK
        holder = escaping.visible(lock.current_holder() or "another process")
    if not acquired:
        if not args.standby:
            print(
                f"connectbatch: error: another coordinator is running ({holder}); "
                "start this one with --standby to take over when it stops",
                file=sys.stderr, flush=True,
            )  # fmt: skip
            return EXIT_BUSY
        print(f"standby: coordinator {holder} is running; waiting to take over", flush=True)
        if not lock.wait(stop):
            return EXIT_OK
    print(f"coordinator lock held by {escaping.visible(lock.holder)}", flush=True)
    svc = cc.services()
    app = make_app(settings)
    engine, coordinator = engine_for(svc, app)
    try:
        engine.start(servers=not args.no_servers)
        print(f"serving {settings.database} (coordinator)", flush=True)
        while not stop.is_set() and not lock.lost.is_set():
            stop.wait(0.5)
    finally:
        engine.stop()
        coordinator.stop()
        lock.release()
    return EXIT_OK if not lock.lost.is_set() else EXIT_BUSY


COMMANDS: dict[str, Command] = {
    "worker": Command("run a distributed-mode worker (Celery, prefork)", _configure_worker, _run_worker),
    "workers": Command(
        "list the workers, the queue depth and tasks in flight", _configure_workers, _run_workers
    ),
}
