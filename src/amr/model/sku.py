"""The SKU catalogue (reference §1.1): size, vCPUs, primary shards and connection limit per SKU."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sku:
    """One Azure Managed Redis SKU."""

    name: str
    size_gb: float
    vcpus: int
    shards: int
    max_connections: int

    @property
    def tier(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def flash(self) -> bool:
        return self.tier == "FlashOptimized"

    @property
    def max_memory_bytes(self) -> int:
        return int(self.size_gb * 1024**3)


SKUS: tuple[Sku, ...] = (
    Sku("Balanced_B0", 0.5, 2, 1, 15000),
    Sku("Balanced_B1", 1, 2, 1, 15000),
    Sku("Balanced_B3", 3, 2, 2, 15000),
    Sku("ComputeOptimized_X3", 3, 4, 2, 30000),
    Sku("Balanced_B5", 6, 2, 2, 15000),
    Sku("ComputeOptimized_X5", 6, 4, 2, 30000),
    Sku("Balanced_B10", 12, 4, 2, 30000),
    Sku("MemoryOptimized_M10", 12, 2, 2, 15000),
    Sku("ComputeOptimized_X10", 12, 8, 6, 75000),
    Sku("Balanced_B20", 24, 8, 6, 75000),
    Sku("MemoryOptimized_M20", 24, 4, 2, 30000),
    Sku("ComputeOptimized_X20", 24, 16, 12, 150000),
    Sku("Balanced_B50", 60, 16, 12, 150000),
    Sku("MemoryOptimized_M50", 60, 8, 6, 75000),
    Sku("ComputeOptimized_X50", 60, 32, 24, 200000),
    Sku("Balanced_B100", 120, 32, 24, 200000),
    Sku("MemoryOptimized_M100", 120, 16, 12, 150000),
    Sku("ComputeOptimized_X100", 120, 64, 48, 200000),
    Sku("Balanced_B150", 180, 48, 48, 200000),
    Sku("MemoryOptimized_M150", 180, 24, 24, 200000),
    Sku("ComputeOptimized_X150", 180, 96, 96, 200000),
    Sku("Balanced_B250", 240, 64, 48, 200000),
    Sku("MemoryOptimized_M250", 240, 32, 24, 200000),
    Sku("ComputeOptimized_X250", 240, 128, 96, 200000),
    Sku("FlashOptimized_A250", 240, 8, 6, 75000),
    Sku("Balanced_B350", 360, 96, 96, 200000),
    Sku("MemoryOptimized_M350", 360, 48, 48, 200000),
    Sku("ComputeOptimized_X350", 360, 192, 192, 200000),
    Sku("Balanced_B500", 480, 128, 96, 200000),
    Sku("MemoryOptimized_M500", 480, 64, 48, 200000),
    Sku("ComputeOptimized_X500", 480, 256, 192, 200000),
    Sku("FlashOptimized_A500", 480, 16, 12, 150000),
    Sku("Balanced_B700", 720, 192, 192, 200000),
    Sku("MemoryOptimized_M700", 720, 96, 96, 200000),
    Sku("ComputeOptimized_X700", 720, 384, 384, 200000),
    Sku("FlashOptimized_A700", 720, 24, 24, 200000),
    Sku("Balanced_B1000", 960, 256, 192, 200000),
    Sku("MemoryOptimized_M1000", 960, 128, 192, 200000),
    Sku("FlashOptimized_A1000", 960, 32, 24, 200000),
    Sku("MemoryOptimized_M1500", 1440, 192, 192, 200000),
    Sku("FlashOptimized_A1500", 1440, 48, 48, 200000),
    Sku("MemoryOptimized_M2000", 1920, 256, 192, 200000),
    Sku("FlashOptimized_A2000", 1920, 64, 48, 200000),
    Sku("FlashOptimized_A4500", 4500, 144, 96, 200000),
)

# Legacy Enterprise SKUs share the resource type but are not offered by amr.
LEGACY_SKU_NAMES: frozenset[str] = frozenset(
    {
        "Enterprise_E1",
        "Enterprise_E5",
        "Enterprise_E10",
        "Enterprise_E20",
        "Enterprise_E50",
        "Enterprise_E100",
        "Enterprise_E200",
        "Enterprise_E400",
        "EnterpriseFlash_F300",
        "EnterpriseFlash_F700",
        "EnterpriseFlash_F1500",
    }
)


def sku_by_name(name: str) -> Sku | None:
    """The SKU with this name (matched without regard to case, as ARM does), or None."""
    for sku in SKUS:
        if sku.name.lower() == name.lower():
            return sku
    return None
