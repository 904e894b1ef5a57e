"""The compose file as a swarm stack file, one wave at a time (pure: data in, data out).

`docker stack deploy` reads compose files of the version 3 schema and runs services its own way, so the
toolkit gives it a file made for it from the compose file as compose itself reads it (`compose config`:
profiles applied, variables filled in, anchors resolved):

- only the services of the wave being deployed (a deploy leaves every service it is not given as it is, so
  each wave is deployed once the one before is ready, and nothing else moves);
- their replicas, a stop grace from the registry, a restart policy from the compose file's `restart` (none
  by default: see _restart_policy), a stop-first update order (a trading service never runs twice at once),
  and a container label with this run's id, which makes every deploy replace the tasks: a rolling restart that
  also applies the current file and re-reads images rebuilt under the same tag;
- the registry's `swarm:` keys (replicas, placement constraints, endpoint_mode) over the compose file's deploy
  block, endpoint_mode dnsrr unless either says otherwise, and a service with its data in a local volume pinned
  to the node that holds it;
- ports only for services the registry marks `public: true`, published in host mode (this engine's
  routing mesh may not route, and swarm cannot bind an address: a published port is open on every
  interface of every node); every other port is left unpublished, with a warning;
- no `build`, `container_name`, `depends_on`, `profiles` or `restart` (swarm ignores or rejects them: the
  registry's waves replace depends_on), and every `$` doubled, since the deploy interpolates again.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..data import dataclass
from ..registry import Service

VERSION = "3.8"
ROLLOUT_LABEL = "tmt-ops.rollout"
# What a swarm service takes from a compose service as it is; everything else is dropped or made here.
KEPT = ("image", "command", "entrypoint", "environment", "healthcheck", "init", "volumes", "networks", "labels",
        "stop_signal", "user", "working_dir", "cap_add", "cap_drop", "hostname", "extra_hosts", "ulimits", "tmpfs",
        "secrets", "configs", "logging", "sysctls", "read_only", "deploy")


@dataclass(frozen=True)
class PortMapping:
    target: int  # the port inside the container
    published: int | None  # on the host; None: a random one (compose) / not published
    host_ip: str | None
    protocol: str = "tcp"


def _short_port(text: str) -> PortMapping | None:
    """[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], HOST_IP in brackets for IPv6; None for what a registry service's
    single port is not (a range)."""
    text, _, protocol = text.partition("/")
    host_ip = None
    if text.startswith("["):
        host_ip, _, text = text[1:].partition("]:")
    parts = text.split(":")
    if len(parts) == 3 and host_ip is None:
        host_ip = parts.pop(0)
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        return None
    return PortMapping(int(parts[-1]), int(parts[0]) if len(parts) == 2 else None, host_ip or None, protocol or "tcp")


def port_mappings(spec: Mapping[str, Any]) -> list[PortMapping]:
    """A compose service's ports, as `compose config` writes them (long syntax from v2, strings from v1)."""
    found = []
    for port in spec.get("ports") or ():
        if isinstance(port, Mapping):
            published = port.get("published")
            found.append(PortMapping(int(port["target"]), int(published) if published not in (None, "") else None,
                                     port.get("host_ip") or None, port.get("protocol") or "tcp"))
            continue
        parsed = _short_port(str(port))
        if parsed is not None:
            found.append(parsed)
    return found


def target_port(spec: Mapping[str, Any], service: Service) -> int | None:
    """The port the service listens on inside its container: the target of the mapping that publishes the
    registry's port, else the registry's port itself (the core services listen on it inside too)."""
    for mapping in port_mappings(spec):
        if mapping.published == service.port:
            return mapping.target
    return service.port


def _restart_policy(restart: str | None) -> dict:
    """compose `restart` -> swarm restart_policy; compose's default is "no", and so it stays here: `condition:
    none`. Swarm applies one policy to three cases, and for a trading desk none is right in each:
    - a task that crashed is not started again behind anyone's back (an execution engine in a crash loop places
      orders at every start); `system-health.py --monitor --heal` restarts it, under the run lock, rate-limited,
      with its hooks and the health verdict;
    - a task on a node that is lost: the manager cannot tell a dead node from one cut off from it, whose task may
      still be trading. Swarm would start a replacement elsewhere once it calls the node down (about 15 s), and
      the service would then run twice: duplicate orders. Instead the toolkit says which tasks were there (status,
      health, the run that meets it) and starts them elsewhere only once the node is back or drained, the
      operator's word that it is gone (a start while a task was last seen running there is refused);
    - a task on a drained node is stopped by swarm with a plain SIGTERM, without its pre-stop call, and not
      replaced: status and health say so, and a restart or heal starts it elsewhere. To move services off a node
      in order: `docker node update --availability pause NODE` (no new tasks there), a rolling restart (each
      task's pre-stop call, then its replacement elsewhere), then drain it.
    A service that wants swarm's own restarts says so in the compose file (`restart: always`, `on-failure[:N]`)."""
    word, _, attempts = (restart or "no").partition(":")
    if word in ("always", "unless-stopped"):
        return {"condition": "any"}
    if word == "on-failure":
        return {"condition": "on-failure", **({"max_attempts": int(attempts)} if attempts.isdigit() else {})}
    return {"condition": "none"}


def _escaped(value: Any) -> Any:
    """Every `$` doubled in every string: compose already filled the variables in, the deploy must not again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _generated(entries: Mapping[str, Any] | None, project: str, used: set[str]) -> dict:
    """Top-level networks or volumes the wave's services use, without the names compose gave them after its
    own project (the stack names them after itself)."""
    out = {}
    for key, spec in (entries or {}).items():
        if key not in used:
            continue
        spec = dict(spec or {})
        if _named_by_project(spec, project, key):
            spec.pop("name", None)
        out[key] = spec or None
    return out


def _named_by_project(spec: Mapping[str, Any], project: str, key: str) -> bool:
    """No name of its own: compose calls it PROJECT_KEY, and the stack STACK_KEY."""
    return spec.get("name") in (None, f"{project}_{key}")


def stack_networks(model: Mapping[str, Any], project: str, stack: str, services: Iterable[Service]) -> list[str]:
    """The networks `stack deploy` creates for these services (STACK_KEY); external and named ones are not its."""
    used = _used((model["services"].get(s.compose_service) or {} for s in services), "networks")
    networks = model.get("networks") or {}
    return [f"{stack}_{key}" for key in sorted(used)
            if not (networks.get(key) or {}).get("external") and _named_by_project(networks.get(key) or {}, project, key)]


def _used(services: Iterable[Mapping[str, Any]], key: str) -> set[str]:
    used: set[str] = set()
    for spec in services:
        entries = spec.get(key) or ()
        if key == "networks":
            used |= set(entries) or {"default"}
        else:
            used |= {v.get("source") if isinstance(v, Mapping) else str(v).split(":")[0] for v in entries}
    return used


def all_networks(model: Mapping[str, Any]) -> list[str]:
    """Every network key the compose file's services use (the relay joins them all)."""
    return sorted(_used(model["services"].values(), "networks"))


def relay_document(model: Mapping[str, Any], project: str, name: str, spec: Mapping[str, Any]) -> dict:
    """The stack file of the probe relay alone (relay.py), with the networks it joins defined as the waves
    define them."""
    document: dict[str, Any] = {"version": VERSION, "services": {name: dict(spec)}}
    networks = _generated(model.get("networks"), project, set(spec.get("networks") or ()))
    if networks:
        document["networks"] = networks
    return _escaped(document)


def unpublished(model: Mapping[str, Any], services: Iterable[Service]) -> list[str]:
    """'name:port' of each port the compose file publishes for a service the registry does not mark public."""
    out = []
    for service in services:
        spec = model["services"].get(service.compose_service) or {}
        for mapping in port_mappings(spec):
            if not service.public and mapping.published is not None:
                out.append(f"{service.name}:{mapping.published}")
    return out


def constraints(spec: Mapping[str, Any], service: Service) -> list[str]:
    """Where the service may run: the registry's swarm.placement, else the compose file's deploy.placement."""
    if service.swarm.placement:
        return list(service.swarm.placement)
    return list((((spec.get("deploy") or {}).get("placement") or {}).get("constraints")) or ())


def local_volumes(model: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """The named volumes of the stack a service mounts that live on one node (the local driver): its data stays on
    the node where it first ran."""
    volumes = model.get("volumes") or {}
    named = [v.get("source") for v in spec.get("volumes") or () if isinstance(v, Mapping) and v.get("type") == "volume"]
    return [name for name in named if name in volumes and (volumes[name] or {}).get("driver") in (None, "local")
            and not (volumes[name] or {}).get("external")]


def _deploy(given: Mapping[str, Any], service: Service, pin: str | None) -> dict:
    """The compose file's deploy block with the registry's swarm: keys over it, dnsrr unless either says otherwise
    (a virtual IP needs the kernel's IPVS, which not every host has: with dnsrr a service name resolves to its
    tasks' own addresses), and `pin` (a node id) added to the constraints: a service with its data in a local
    volume is never moved off the node that holds it."""
    deploy = dict(given)
    settings = service.swarm
    deploy["endpoint_mode"] = settings.endpoint_mode or deploy.get("endpoint_mode") or "dnsrr"
    placement = dict(deploy.get("placement") or {})
    if settings.placement:
        placement["constraints"] = list(settings.placement)
    if pin:
        placement["constraints"] = [*(placement.get("constraints") or ()), f"node.id == {pin}"]
    if placement:
        deploy["placement"] = placement
    return deploy


def wave_document(model: Mapping[str, Any], project: str, services: Iterable[Service], replicas: Mapping[str, int],
                  rollout: str, pins: Mapping[str, str] | None = None) -> dict:
    """The stack file that deploys these services (and only these) with their replicas. `model`: `compose
    config` of the compose file; `project`: the compose project name it was read under; `pins`: service -> the
    node id it must stay on (its local volume's node)."""
    out: dict[str, dict] = {}
    for service in services:
        spec = model["services"][service.compose_service]
        swarm = {k: spec[k] for k in KEPT if spec.get(k) is not None}
        labels = swarm.get("labels") or {}
        if isinstance(labels, list):  # "key=value" strings
            labels = dict(item.partition("=")[::2] for item in labels)
        swarm["labels"] = {**labels, ROLLOUT_LABEL: rollout}
        deploy = _deploy(swarm.get("deploy") or {}, service, (pins or {}).get(service.name))
        deploy["replicas"] = replicas[service.name]
        deploy.setdefault("restart_policy", _restart_policy(spec.get("restart")))
        deploy.setdefault("update_config", {"parallelism": 1, "order": "stop-first", "failure_action": "pause"})
        swarm["deploy"] = deploy
        swarm["stop_grace_period"] = f"{service.stop_grace:g}s"
        if service.public:
            swarm["ports"] = [{"target": m.target, "published": m.published, "protocol": m.protocol, "mode": "host"}
                              for m in port_mappings(spec) if m.published is not None]
        out[service.compose_service] = swarm
    document: dict[str, Any] = {"version": VERSION, "services": out}
    for key in ("networks", "volumes"):
        entries = _generated(model.get(key), project, _used(out.values(), key))
        if entries:
            document[key] = entries
    return _escaped(document)
