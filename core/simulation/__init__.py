"""Demo data: a documented, reproducible demo fleet with injected faults (``generator``), and the service that
stores it (``seed``). See ``docs/data/demo_fleet.md``."""

from core.simulation.catalogue import DEMO_ASSETS, DEMO_SENSOR_IDS, DEMO_SENSORS, PROFILES
from core.simulation.faults import FAULT_KINDS, FaultSpec
from core.simulation.generator import DemoFleet, floor_time, generate_demo_fleet

__all__ = [
    "DEMO_ASSETS",
    "DEMO_SENSORS",
    "DEMO_SENSOR_IDS",
    "FAULT_KINDS",
    "PROFILES",
    "DemoFleet",
    "FaultSpec",
    "floor_time",
    "generate_demo_fleet",
]
