"""A synthetic pelvis-like patient for ``rtplan demo`` (and tests).

The phantom: an elliptic body (soft tissue with a fat rim), a rectum with gas, pelvic
bones and femoral heads, a couch below the patient, four PSMA-positive lesions at
different sites, and an elective nodal CTV made of iliac tubes and a presacral region,
drawn analytically as circles on every CT slice (as an atlas contour would be).
All coordinates are DICOM patient coordinates (LPS, mm), head-first supine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtplan.imaging.grid import Grid

__all__ = ["DEMO_LESIONS", "DemoPatient", "make_demo_patient", "write_demo_inputs"]

#: The demo's lesions (LPS mm centres, diameters in mm).
DEMO_LESIONS: list[dict] = [
    {"id": "L1", "site": "pelvic_node",
     "source": {"kind": "sphere", "center_mm": [62.3, 12.4, 21.1], "diameter_mm": 12.0}},
    {"id": "L2", "site": "pelvic_node",
     "source": {"kind": "sphere", "center_mm": [-58.6, 18.2, -9.7], "diameter_mm": 8.0}},
    {"id": "L3", "site": "bone",
     "source": {"kind": "sphere", "center_mm": [-95.2, 30.5, 40.3], "diameter_mm": 16.0}},
    {"id": "L4", "site": "prostate_bed",
     "source": {"kind": "sphere", "center_mm": [1.1, -14.8, -62.4], "diameter_mm": 10.0}},
]

ENI_ROI_NAME = "CTV_Elective"


@dataclass(frozen=True)
class DemoPatient:
    """The synthetic CT and the ENI CTV circles per slice."""

    volume_hu: NDArray[np.int16]
    grid: Grid
    #: per slice: list of (x_mm, y_mm, radius_mm) circles whose union is the ENI CTV
    eni_circles: list[list[tuple[float, float, float]]]


def _eni_circles(z: float) -> list[tuple[float, float, float]]:
    """Iliac tubes (left and right) running laterally as z goes up, and a presacral disc."""
    circles = []
    if -45.0 <= z <= 75.0:
        t = (z + 45.0) / 120.0  # 0 at the bottom, 1 at the top
        x = 50.0 + 25.0 * t
        y = 15.0 + 10.0 * t
        r = 14.0
        circles += [(x, y, r), (-x, y, r)]
    if 20.0 <= z <= 75.0:
        circles.append((0.0, 55.0, 16.0))
    return circles


def make_demo_patient(
    shape: tuple[int, int, int] = (60, 256, 256),
    spacing_mm: tuple[float, float, float] = (3.0, 1.5, 1.5),
) -> DemoPatient:
    """Build the synthetic pelvis CT (HU, int16) on an axial head-first-supine grid.

    Examples
    --------
    >>> p = make_demo_patient(shape=(6, 64, 64), spacing_mm=(3.0, 6.0, 6.0))
    >>> p.volume_hu.shape, p.volume_hu.dtype.name
    ((6, 64, 64), 'int16')
    """
    nz, ny, nx = shape
    dz, dy, dx = spacing_mm
    origin = (-(nx - 1) * dx / 2, -(ny - 1) * dy / 2 + 10.0, -(nz - 1) * dz / 2)
    grid = Grid(shape, origin_mm=origin, spacing_mm=spacing_mm)
    x = origin[0] + np.arange(nx) * dx
    y = origin[1] + np.arange(ny) * dy
    z = origin[2] + np.arange(nz) * dz
    yy, xx = np.meshgrid(y, x, indexing="ij")
    vol = np.full(shape, -1000, dtype=np.int16)
    eni = []
    for k, zk in enumerate(z):
        sl = np.full((ny, nx), -1000, dtype=np.int16)
        body = (xx / 175.0) ** 2 + ((yy - 10.0) / 115.0) ** 2 <= 1.0
        inner = (xx / 160.0) ** 2 + ((yy - 10.0) / 100.0) ** 2 <= 1.0
        sl[body] = -90   # fat
        sl[inner] = 35   # soft tissue
        # rectum with gas (posterior, centre)
        sl[(xx / 14.0) ** 2 + ((yy - 50.0) / 12.0) ** 2 <= 1.0] = 20
        sl[(xx / 7.0) ** 2 + ((yy - 50.0) / 6.0) ** 2 <= 1.0] = -900
        # iliac wings above z = 0, femoral heads below, sacrum posterior
        for side in (-1.0, 1.0):
            if zk > 0:
                wing = (((xx - side * 100.0) / 22.0) ** 2 + ((yy - 25.0) / 55.0) ** 2) <= 1.0
                sl[wing] = 650
            else:
                head = ((xx - side * 95.0) ** 2 + (yy - 20.0) ** 2) <= 24.0**2
                sl[head] = 800
        if zk > 15:
            sl[((xx / 40.0) ** 2 + ((yy - 95.0) / 18.0) ** 2) <= 1.0] = 700
        # couch: a slab 8 mm below the body, not touching it
        sl[(yy >= 135.0) & (yy <= 145.0) & (np.abs(xx) <= 180.0)] = 250
        vol[k] = sl
        eni.append(_eni_circles(float(zk)))
    return DemoPatient(volume_hu=vol, grid=grid, eni_circles=eni)


def eni_contours(patient: DemoPatient) -> list:
    """The ENI CTV as planar contours (the union of circles on every slice)."""
    from shapely.geometry import Point
    from shapely.ops import unary_union

    from rtplan.structures.contour import PlanarContour

    out = []
    for k, circles in enumerate(patient.eni_circles):
        if not circles:
            continue
        zk = float(patient.grid.index_to_world([k, 0, 0])[2])
        shape = unary_union([Point(cx, cy).buffer(r, quad_segs=32) for cx, cy, r in circles])
        polys = getattr(shape, "geoms", [shape])
        for poly in polys:
            xy = np.asarray(poly.exterior.coords)[:-1]
            pts = np.column_stack([xy, np.full(len(xy), zk)])
            out.append(PlanarContour(k, pts))
    return out


def write_demo_inputs(folder: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the demo CT series, the ENI atlas RTSTRUCT and the lesions file.

    Returns the paths: ``ct`` (folder), ``eni`` (RTSTRUCT), ``lesions`` (JSON).
    """
    from rtplan._shared.io import atomic_write_text
    from rtplan.imaging.ct import write_ct_series
    from rtplan.structures.contour import ROIContours
    from rtplan.structures.rtstruct import write_rtstruct

    folder = Path(folder)
    patient = make_demo_patient()
    ct = write_ct_series(
        folder / "ct", patient.volume_hu, patient.grid,
        patient={"name": "RTPLAN^DEMO", "patient_id": "RTPLAN-DEMO-001"},
        series_description="rtplan synthetic pelvis (demo)",
        overwrite=overwrite,
    )
    eni_roi = ROIContours(ENI_ROI_NAME, "CTV", (255, 170, 0), eni_contours(patient),
                          description="synthetic elective nodal CTV (demo atlas)")
    eni_path = write_rtstruct(folder / "eni_atlas.dcm", ct, [eni_roi], overwrite=overwrite)
    lesions = {
        "lesions": DEMO_LESIONS,
        "margins": {"ctv_margin_mm": 3, "ptv_margin_mm": 3},
        "eni": {
            "ctv": {"kind": "rtstruct", "path": "eni_atlas.dcm", "roi": ENI_ROI_NAME},
            "margin_mm": 5,
            "sib": True,
            "boost_dose_gy": 61.2,
            "elective_dose_gy": 51.0,
        },
    }
    lesions_path = atomic_write_text(
        folder / "lesions.json", json.dumps(lesions, indent=2) + "\n", overwrite=overwrite
    )
    return {"ct": folder / "ct", "eni": eni_path, "lesions": lesions_path}
