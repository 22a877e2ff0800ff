"""Attachments in few calls: from the policies' side in batches when many sockets share a
policy, from the socket's side when one socket gains several policies. Against the real
emulator over HTTP; the client's own request counts say which calls were made."""

from __future__ import annotations

from pathlib import Path

from documents import opts, policy_doc, socket_doc, write

from reconciler.apply.attach_groups import BATCH
from reconciler.border0.inventory import fetch_actual
from reconciler.reconcile import reconcile


def test_many_new_sockets_are_attached_in_batches_from_the_policy_side(
    emulator, tmp_path: Path
) -> None:
    n = BATCH + 30  # one policy's sockets need two batches
    docs = [policy_doc("ops"), policy_doc("dev")]
    docs += [socket_doc(f"s{i:03d}", policies=["ops"] + (["dev"] if i % 10 == 0 else []))
             for i in range(n)]
    folder = write(tmp_path / "m", docs)
    client = emulator.client()
    before = client.request_counts[("PUT", 200)]
    result = reconcile([folder], client, opts())
    assert result.ok, result.error
    attaches = client.request_counts[("PUT", 200)] - before
    assert attaches == 3  # ops: 100 + 30 sockets, dev: 13 sockets; not one call per socket
    actual = fetch_actual(client)
    assert all("ops" in actual.sockets[f"s{i:03d}"].policy_names for i in range(n))
    assert set(actual.sockets["s010"].policy_names) == {"ops", "dev"}
    assert set(actual.sockets["s011"].policy_names) == {"ops"}

    # detaching one policy from every socket is as few calls
    write(folder, [policy_doc("ops"), policy_doc("dev")]
          + [socket_doc(f"s{i:03d}", policies=["ops"]) for i in range(n)])
    before = client.request_counts[("PUT", 200)]
    assert reconcile([folder], client, opts()).ok
    assert client.request_counts[("PUT", 200)] - before == 1
    assert set(fetch_actual(client).sockets["s010"].policy_names) == {"ops"}


def test_one_socket_gaining_several_policies_is_one_call_from_its_side(
    emulator, tmp_path: Path
) -> None:
    docs = [policy_doc(p) for p in ("a", "b", "c")] + [socket_doc("web")]
    folder = write(tmp_path / "m", docs)
    client = emulator.client()
    assert reconcile([folder], client, opts()).ok
    write(folder, docs[:3] + [socket_doc("web", policies=["a", "b", "c"])])
    before = client.request_counts[("PUT", 200)]
    assert reconcile([folder], client, opts()).ok
    assert client.request_counts[("PUT", 200)] - before == 1
    assert set(fetch_actual(client).sockets["web"].policy_names) == {"a", "b", "c"}
