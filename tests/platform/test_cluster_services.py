"""The cluster services the platform adds for real pods: cluster DNS (CoreDNS behind
kube-system/kube-dns) answers Service names with their cluster IPs, and metrics-server serves the
resource metrics API HorizontalPodAutoscalers read CPU from, for pods on the real node."""

from __future__ import annotations

import json
import secrets
import socket
import struct
from typing import Any

from tests.support.kube import Kubectl, eventually
from tests.support.platform import STARTED_BY, echo_backend

CLUSTER_DOMAIN = "cluster.local"
A_RECORD = 1


def resolve_a(server: str, name: str) -> list[str]:
    """The IPv4 addresses a DNS server answers for `name` (one UDP query, RFC 1035)."""
    query_id = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question
    packet += struct.pack(">HH", A_RECORD, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(packet, (server, 53))
        answer = sock.recv(4096)
    answer_id, flags, _, count = struct.unpack(">HHHH", answer[:8])
    assert answer_id == query_id and flags & 0x000F == 0, f"DNS error for {name}: flags {flags:#x}"
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(count):
        offset = _skip_name(answer, offset)
        kind, _, _, length = struct.unpack(">HHIH", answer[offset : offset + 10])
        if kind == A_RECORD:
            addresses.append(socket.inet_ntoa(answer[offset + 10 : offset + 10 + length]))
        offset += 10 + length
    return addresses


def _skip_name(message: bytes, offset: int) -> int:
    """The offset after the name at `offset`: labels up to the root, or a compression pointer."""
    while message[offset] != 0:
        if message[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + message[offset]
    return offset + 1


def test_cluster_dns_answers_service_names(kube: Kubectl, k: Kubectl, namespace: str) -> None:
    dns = kube.in_namespace("kube-system").get("service", "kube-dns")
    assert dns is not None, f"no Service kube-system/kube-dns: {STARTED_BY}"
    slices = kube.in_namespace("kube-system").list(
        "endpointslices", "kubernetes.io/service-name=kube-dns"
    )
    real_nodes = {n["metadata"]["name"] for n in kube.list("nodes", "type!=kwok")}
    serving = [
        e
        for s in slices
        for e in s.get("endpoints") or []
        if e["conditions"].get("ready") and e.get("nodeName") in real_nodes
    ]
    assert serving, "no ready CoreDNS pod on a real node behind kube-system/kube-dns"
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "named"},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "named"}},
        }
    )
    service = k.get("service", "named") or {}
    name = f"named.{namespace}.svc.{CLUSTER_DOMAIN}"
    # CoreDNS learns of a new Service from its watch.
    answer = eventually(
        lambda: resolve_a(dns["spec"]["clusterIP"], name), timeout=30, what=f"an answer for {name}"
    )
    assert answer == [service["spec"]["clusterIP"]]


def test_metrics_server_reports_the_cpu_of_real_pods(
    kube: Kubectl, k: Kubectl, namespace: str, echo_image: str
) -> None:
    api = kube.get("apiservice", "v1beta1.metrics.k8s.io")
    assert api is not None, f"no APIService v1beta1.metrics.k8s.io: {STARTED_BY}"
    k.apply(*echo_backend("measured", echo_image, "hello", {}))
    k.run("rollout", "status", "deployment/measured", "--timeout=120s")

    def pod_metrics() -> list[dict[str, Any]]:
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        return list(json.loads(kube.run("get", "--raw", path))["items"])

    # metrics-server reports a pod after two scrapes of its node's kubelet.
    [pod] = eventually(pod_metrics, timeout=90, interval=2, what="metrics of the echo pod")
    [container] = pod["containers"]
    assert set(container["usage"]) >= {"cpu", "memory"}, container
