"""The C-MAPSS channel names (no heavy imports: the scheduling agent's cheap check reads them)."""

from __future__ import annotations

#: the 21 sensors in file order (Saxena et al. 2008, table 2)
CHANNELS: tuple[str, ...] = (
    "T2", "T24", "T30", "T50", "P2", "P15", "P30", "Nf", "Nc", "epr", "Ps30",
    "phi", "NRf", "NRc", "BPR", "farB", "htBleed", "Nf_dmd", "PCNfR_dmd", "W31", "W32",
)  # fmt: skip

__all__ = ["CHANNELS"]
