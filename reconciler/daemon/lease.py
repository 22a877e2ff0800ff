"""Leader election with a Kubernetes Lease (coordination.k8s.io/v1), as client-go does it.

`run --leader-elect` runs several replicas of which one writes. Each replica runs a `LeaderElector`
thread that every `retry_period` seconds reads the Lease and either

- creates it (none yet), renews it (we hold it), takes it over (its record has not changed for
  `lease_duration` seconds by *our own* clock, or its holder released it), or
- leaves it alone (another holder renews it).

Writes go through the API server's optimistic concurrency: a PUT carries the resourceVersion it
read, so two replicas racing for an expired lease get one 200 and one 409 Conflict.

Why two writers never overlap: a leader counts as leader only until `renew_deadline` seconds after
the start of its last successful renewal (`is_leader()`, checked before each write and before
starting connectors). A follower may take over only `lease_duration` seconds after it *saw* that
renewal, which was after it started. With renew_deadline < lease_duration (10 s < 15 s by default)
the old leader has stopped writing for at least the difference before anyone else may start. A
leader that misses its deadline, or reads a Lease naming another holder (it was deleted and a
follower created it anew), reports it once through `on_lost`; the daemon then exits (as
client-go's users do) and its supervisor stops the connectors; Kubernetes restarts it as a follower.

Time on the wire is only informational (renewTime): expiry is judged by local monotonic clocks, so
clock skew between nodes does not matter. The Kubernetes client is lightkube, an optional extra
(`pip install 'border0-reconciler[k8s]'`); it reads the in-cluster service account or a kubeconfig.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import UserError
from reconciler.settings import DEFAULTS

__all__ = ["LeaderElector", "LeaseConfig", "default_identity", "lease_client"]

log = logging.getLogger("reconciler.daemon")


def default_identity() -> str:
    """The pod's name (POD_NAME from the downward API, else the hostname, which is the pod name)."""
    return os.environ.get("POD_NAME") or socket.gethostname()


class LeaseConfig:
    """client-go's defaults (reconciler/settings.py): lease 15 s, renew deadline 10 s, retry 2 s."""

    def __init__(
        self,
        name: str = DEFAULTS.lease_name,
        namespace: str | None = None,
        identity: str | None = None,
        lease_duration: float = DEFAULTS.lease_duration,
        renew_deadline: float = DEFAULTS.renew_deadline,
        retry_period: float = DEFAULTS.retry_period,
    ) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise UserError(
                "leader election needs --retry-period < --renew-deadline < --lease-duration "
                f"(got {retry_period:g}s, {renew_deadline:g}s, {lease_duration:g}s)"
            )
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period


def lease_client(config: LeaseConfig) -> Any:
    """A lightkube Client: in-cluster, or the kubeconfig of KUBECONFIG / ~/.kube/config."""
    try:
        from lightkube import Client, KubeConfig
    except ImportError:
        raise UserError(
            "--leader-elect needs the Kubernetes client: pip install 'border0-reconciler[k8s]'"
        ) from None
    import httpx2

    try:
        kubeconfig = KubeConfig.from_env()
    except Exception as exc:  # noqa: BLE001 - lightkube's ConfigError, OSError, YAML errors
        raise UserError(f"--leader-elect: no Kubernetes configuration found ({exc})") from None
    namespace = config.namespace or getattr(kubeconfig.get(), "namespace", None) or "default"
    config.namespace = namespace
    timeout = httpx2.Timeout(max(0.5, config.retry_period))
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # not a line per renewal
    return Client(kubeconfig, namespace=namespace, timeout=timeout, trust_env=False)


def _whole_seconds(duration: float) -> int:
    """The lease as the Lease's whole `leaseDurationSeconds`, rounded up: followers wait that
    long, so fewer (round(2.4) is 2) let one take over while the leader, counting to its
    renew deadline (2.2 s), still writes; 0 the API server refuses."""
    return max(1, math.ceil(duration))


class LeaderElector:
    """Campaign for the Lease in a thread; `is_leader()` says whether writing is safe right now."""

    def __init__(
        self,
        config: LeaseConfig,
        client: Any,
        *,
        on_started: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.client = client
        self.on_started = on_started
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leading = False
        self._renewed_at = float("-inf")  # monotonic start of the last successful renewal
        self._observed: tuple[Any, ...] | None = None  # the last Lease record seen
        self._observed_at = 0.0  # when (monotonic) it was first seen
        self.lost = False
        self.transitions = 0

    # --- what the daemon asks -----------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while we hold the lease: our last renewal is younger than the renew deadline
        and the Lease, as last read, names no other holder."""
        return (
            self._leading
            and not self.lost
            and not self._deposed()
            and time.monotonic() - self._renewed_at < self.config.renew_deadline
        )

    def _deposed(self) -> bool:
        """The Lease names another holder: it was deleted and created again by a follower, or
        edited. As client-go's IsLeader (it compares the observed holder,
        tools/leaderelection/leaderelection.go), we stop writing as soon as we read it, not at
        the renew deadline, while the new holder already writes."""
        holder = self._observed[0] if self._observed else None
        return bool(holder) and holder != self.config.identity

    @property
    def role(self) -> str:
        return "leader" if self.is_leader() else "follower"

    def describe(self) -> dict[str, Any]:
        holder = self._observed[0] if self._observed else None
        return {
            "lease": f"{self.config.namespace}/{self.config.name}",
            "identity": self.config.identity,
            "holder": holder,
        }

    # --- the campaign ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-elector", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; with `release`, hand the lease back so a follower takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.retry_period + 5)
        if release and self.is_leader():
            try:
                self._release()
                log.info("leader lease released", extra={"lease": self.config.name})
            except Exception as exc:  # noqa: BLE001 - the lease then expires on its own
                log.warning(f"releasing the leader lease failed: {type(exc).__name__}")
        self._leading = False

    def _run(self) -> None:
        cfg = self.config
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = self._try_acquire_or_renew()
            except Exception as exc:  # noqa: BLE001 - API server unreachable, timeout, 5xx
                log.warning(f"leader election: lease request failed: {exc}")
                ok = False
            if ok:
                self._renewed_at = started
                if not self._leading:
                    self._leading = True
                    self.transitions += 1
                    log.info("became the leader", extra={"identity": cfg.identity})
                    self.on_started()
            elif self._leading and (self._deposed() or
                                    time.monotonic() - self._renewed_at >= cfg.renew_deadline):
                self._leading, self.lost = False, True
                why = (f"the Lease names another holder, {self.describe()['holder']}"
                       if self._deposed() else "could not renew it in time")
                log.error(f"lost the leader lease ({why}): stopping writes")
                self.on_lost()
                return
            self._stop.wait(cfg.retry_period)

    def _try_acquire_or_renew(self) -> bool:
        from lightkube import ApiError
        from lightkube.models.coordination_v1 import LeaseSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.coordination_v1 import Lease

        cfg, now = self.config, datetime.now(UTC)
        try:
            lease = self.client.get(Lease, cfg.name, namespace=cfg.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            fresh = Lease(
                metadata=ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                spec=LeaseSpec(
                    holderIdentity=cfg.identity,
                    leaseDurationSeconds=_whole_seconds(cfg.lease_duration),
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            return self._write(lambda: self.client.create(fresh, namespace=cfg.namespace))
        spec = lease.spec or LeaseSpec()
        record = (spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds,
                  spec.leaseTransitions)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        holder = spec.holderIdentity
        duration = spec.leaseDurationSeconds or cfg.lease_duration
        if holder and holder != cfg.identity:
            if time.monotonic() < self._observed_at + duration:
                return False  # another replica holds it and renews it
            log.info("the leader lease expired; taking it over", extra={"previous": holder})
        if holder != cfg.identity:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + (1 if holder else 0)
        spec.holderIdentity = cfg.identity
        spec.renewTime = now
        spec.leaseDurationSeconds = _whole_seconds(cfg.lease_duration)
        lease.spec = spec
        return self._write(lambda: self.client.replace(lease, namespace=cfg.namespace))

    def _write(self, request: Callable[[], Any]) -> bool:
        """Create or replace; a 409 Conflict means another replica wrote first (not an error)."""
        from lightkube import ApiError

        try:
            written = request()
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        spec = written.spec
        self._observed = (spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds,
                          spec.leaseTransitions)
        self._observed_at = time.monotonic()
        return True

    def _release(self) -> None:
        from lightkube.resources.coordination_v1 import Lease

        lease = self.client.get(Lease, self.config.name, namespace=self.config.namespace)
        if lease.spec is None or lease.spec.holderIdentity != self.config.identity:
            return
        lease.spec.holderIdentity = None
        lease.spec.leaseDurationSeconds = 1
        lease.spec.renewTime = datetime.now(UTC)
        self.client.replace(lease, namespace=self.config.namespace)
