"""A synthetic pelvis-like patient for ``rtplan demo`` (and tests).

The phantom: an elliptic body (soft tissue with a fat rim), a rectum with gas, pelvic
bones and femoral heads, a couch below the patient, four PSMA-positive lesions at
different sites, and an elective nodal CTV made of iliac tubes and a presacral region,
drawn analytically as circles on every CT slice (as an atlas contour would be).
All coordinates are DICOM patient coordinates (LPS, mm), head-first supine.

The demo PET (:func:`make_demo_pet`) is a PSMA-PET of the same patient in the same
frame of reference, on a coarser grid (4 mm voxels): uniform background in the body, a
hot bladder near (but apart from) the prostate-bed lesion, and the four lesions as
uniform spheres of known SUV, blurred to a stated resolution (partial-volume effect).
Its truth (true SUV, volume, and the analytic recovery coefficient of every lesion) is
known in closed form; see :func:`recovery_coefficient`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from rtplan.imaging.grid import Grid

__all__ = [
    "DEMO_BLADDER",
    "DEMO_LESIONS",
    "DEMO_PET_ACQUISITION",
    "DEMO_PET_BACKGROUND_SUV",
    "DEMO_PET_FWHM_MM",
    "DEMO_PET_SEED",
    "DEMO_PET_SUV",
    "DemoBladderTruth",
    "DemoLesionTruth",
    "DemoPET",
    "DemoPETComparison",
    "DemoPETLesionComparison",
    "DemoPETTruth",
    "DemoPatient",
    "blurred_ellipsoids",
    "demo_pet_lesions",
    "make_demo_patient",
    "make_demo_pet",
    "measure_demo_pet",
    "recovery_coefficient",
    "run_demo_structures",
    "write_demo_inputs",
]

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
    grid = Grid(shape, origin_mm=np.asarray(origin), spacing_mm=spacing_mm)
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


# ----------------------------------------------------------------------------- demo PET
#: True SUV of every demo lesion (uniform spheres of DEMO_LESIONS).
DEMO_PET_SUV: dict[str, float] = {"L1": 12.0, "L2": 8.0, "L3": 20.0, "L4": 10.0}
#: Uniform background SUV in the body (0 in the rectal gas and outside the body).
DEMO_PET_BACKGROUND_SUV = 0.7
#: Resolution of the demo PET: FWHM (mm) of the isotropic Gaussian point-spread function.
DEMO_PET_FWHM_MM = 6.0
#: Physiologic bladder uptake: an ellipsoid (LPS mm; semi-axes along x, y, z) anterior
#: and superior to the prostate-bed lesion L4, its surface about 10 mm from L4's.
DEMO_BLADDER: dict = {"center_mm": (0.0, -40.0, -38.0), "semi_axes_mm": (30.0, 20.0, 20.0),
                      "suv": 40.0}
#: Header values of the demo PET: 68Ga-PSMA-11, 150 MBq, 60 min after injection, 80 kg.
DEMO_PET_ACQUISITION: dict = {
    "nuclide": "Ga68",
    "weight_kg": 80.0,
    "injected_dose_bq": 150e6,
    "injection_datetime": dt.datetime(2025, 1, 15, 9, 0, 0),
    "series_datetime": dt.datetime(2025, 1, 15, 10, 0, 0),
    "frame_duration_s": 180.0,
}
#: Delineation of the demo's pet_seed lesions (lesions_pet.json): the library default,
#: background-adaptive 40 % (threshold B + 0.4 (SUVmax - B)), within 25 mm of the seed.
DEMO_PET_SEED: dict = {"method": "background_adaptive", "level": 0.4, "max_radius_mm": 25.0}

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548
_TRUNCATE_SIGMA = 4.0  # Gaussian kernel truncated (and renormalised) at 4 sigma
_SUBSAMPLES = 4  # per axis, for the partial occupancy of truth voxels on a surface
_BODY = ((0.0, 10.0), (175.0, 115.0))  # body ellipse of make_demo_patient: centre, semi-axes
_RECTAL_GAS = ((0.0, 50.0), (7.0, 6.0))


def recovery_coefficient(diameter_mm: float, fwhm_mm: float) -> float:
    """SUVmax recovery of a uniform sphere blurred by an isotropic 3-D Gaussian.

    The blurred value at the sphere centre divided by the true value: the probability
    that a 3-D normal vector of standard deviation ``s`` per axis lies in the sphere.

    Parameters
    ----------
    diameter_mm
        Sphere diameter (mm).
    fwhm_mm
        Full width at half maximum of the Gaussian point-spread function (mm).

    Returns
    -------
    float
        RC in (0, 1).

    Notes
    -----
    ``RC = erf(R / (s sqrt 2)) - sqrt(2 / pi) (R / s) exp(-R^2 / (2 s^2))``, with
    ``R = diameter / 2`` and ``s = FWHM / (2 sqrt(2 ln 2)) = FWHM / 2.3548`` (the CDF of
    the chi distribution with 3 degrees of freedom at ``R / s``).

    Examples
    --------
    >>> round(recovery_coefficient(10.0, 6.0), 4), round(recovery_coefficient(60.0, 6.0), 6)
    (0.722, 1.0)
    """
    if not (diameter_mm > 0 and fwhm_mm > 0):
        from rtplan.errors import InvalidParameterError

        raise InvalidParameterError(
            f"diameter_mm and fwhm_mm must be > 0, got {diameter_mm} and {fwhm_mm}"
        )
    s = fwhm_mm / _FWHM_PER_SIGMA
    x = diameter_mm / 2.0 / s
    return math.erf(x / math.sqrt(2.0)) - math.sqrt(2.0 / math.pi) * x * math.exp(-x * x / 2.0)


def _fine_coordinates(
    grid: Grid, box: tuple[slice, ...], oversample: int
) -> list[NDArray[np.float64]]:
    """World offsets (n_fine, 3) from the grid origin of the sub-voxel centres per axis."""
    out = []
    for a, sl in enumerate(box):
        n = sl.stop - sl.start
        idx = sl.start - 0.5 + (np.arange(n * oversample) + 0.5) / oversample
        out.append((idx * grid.spacing_mm[a])[:, None] * grid.direction[a][None, :])
    return out


def _occupancy(
    rel: Sequence[NDArray[np.float64]],
    axes_mm: NDArray[np.float64],
    steps: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Fraction of each fine voxel inside an ellipsoid (or ellipse).

    ``rel``: broadcastable coordinates of the voxel centres relative to the centre, one
    per dimension of ``axes_mm``; ``steps``: (ndim_index, ndim) world vector of one fine
    voxel along each index axis. Voxels farther from the surface than half their
    diagonal are 0 or 1 (the distance to the surface is at least |rho - 1| min(axes));
    the others are sub-sampled ``_SUBSAMPLES`` times per axis.
    """
    rho = np.sqrt(sum((r / a) ** 2 for r, a in zip(rel, axes_mm, strict=True)))
    occ = (rho <= 1.0).astype(np.float64)
    half_diag = 0.5 * float(np.linalg.norm(steps.sum(axis=0)))
    band = np.abs(rho - 1.0) * float(np.min(axes_mm)) <= half_diag
    if not band.any():
        return occ
    where = np.nonzero(band)
    centre = np.stack([np.broadcast_to(r, rho.shape)[where] for r in rel], axis=1)
    sub = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    grids = np.meshgrid(*([sub] * steps.shape[0]), indexing="ij")
    offsets = sum(g.reshape(-1, 1) * steps[a][None, :] for a, g in enumerate(grids))
    pts = centre[:, None, :] + offsets[None, :, :]
    inside = np.sum((pts / axes_mm) ** 2, axis=-1) <= 1.0
    occ[where] = inside.mean(axis=1)
    return occ


def blurred_ellipsoids(
    grid: Grid,
    ellipsoids: Sequence[tuple[Sequence[float], Sequence[float], float]],
    fwhm_mm: float,
    *,
    oversample: int = 4,
) -> NDArray[np.float64]:
    """Voxel averages of uniform ellipsoids blurred by an isotropic 3-D Gaussian.

    Parameters
    ----------
    grid
        Regular output grid (any orthonormal direction).
    ellipsoids
        ``(center_mm, semi_axes_mm, value)``: LPS centre, semi-axes along x, y, z (mm;
        equal for a sphere), and the uniform value inside (e.g. SUV above background).
    fwhm_mm
        FWHM (mm) of the Gaussian point-spread function.
    oversample
        Sub-voxels per voxel and axis of the high-resolution truth.

    Returns
    -------
    ndarray
        ``[slice, row, column]`` sum of the blurred ellipsoids, averaged over each voxel.

    Notes
    -----
    Per ellipsoid, in a box reaching 4 sigma (plus one voxel) beyond it: (1) the truth
    is drawn on the grid subdivided ``oversample`` times per axis, surface sub-voxels
    weighted by the fraction inside (4 x 4 x 4 samples); (2) it is convolved with the
    Gaussian (``scipy.ndimage.gaussian_filter``, sigma = FWHM / 2.3548, truncated and
    renormalised at 4 sigma, zero outside the box); (3) the ``oversample^3`` sub-voxels
    of every voxel are averaged (a voxel's value is the mean of the blurred activity
    over it). Blurring conserves activity; objects are added linearly.

    Examples
    --------
    >>> g = Grid((15, 15, 15), origin_mm=(-14, -14, -14), spacing_mm=(2, 2, 2))
    >>> img = blurred_ellipsoids(g, [((0, 0, 0), (5, 5, 5), 1.0)], 6.0)
    >>> total_cc = img.sum() * 8 / 1000; true_cc = 4 / 3 * np.pi * 125 / 1000
    >>> bool(abs(total_cc / true_cc - 1) < 0.01), bool(img.max() < 0.72)
    (True, True)
    """
    from scipy import ndimage

    from rtplan.errors import GeometryError, InvalidParameterError

    if not grid.is_regular:
        raise GeometryError("blurred_ellipsoids needs a regular grid")
    if not (fwhm_mm > 0 and int(oversample) >= 1):
        raise InvalidParameterError(
            f"fwhm_mm must be > 0 and oversample >= 1, got {fwhm_mm} and {oversample}"
        )
    ov = int(oversample)
    sigma = fwhm_mm / _FWHM_PER_SIGMA
    spacing = np.asarray(grid.spacing_mm)
    steps = grid.direction * (spacing / ov)[:, None]
    out = np.zeros(grid.shape)
    for center, semi_axes, value in ellipsoids:
        c = np.asarray(center, dtype=float)
        axes = np.asarray(semi_axes, dtype=float)
        if np.any(axes <= 0):
            raise InvalidParameterError(f"semi-axes must be > 0 mm, got {axes.tolist()}")
        pad = _TRUNCATE_SIGMA * sigma
        lo, hi = c - axes - pad, c + axes + pad
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        idx = grid.world_to_index(corners)
        i0 = np.maximum(np.floor(idx.min(axis=0)).astype(int) - 1, 0)
        i1 = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 2, grid.shape)
        if np.any(i1 <= i0):
            continue  # outside the grid
        box = tuple(slice(int(a), int(b)) for a, b in zip(i0, i1, strict=True))
        w = _fine_coordinates(grid, box, ov)
        d = grid.origin_mm - c
        rel = [d[x] + w[0][:, x][:, None, None] + w[1][:, x][None, :, None]
               + w[2][:, x][None, None, :] for x in range(3)]
        fine = float(value) * _occupancy(rel, axes, steps)
        fine = ndimage.gaussian_filter(fine, sigma=sigma / (spacing / ov), mode="constant",
                                       truncate=_TRUNCATE_SIGMA)
        n = [s.stop - s.start for s in box]
        out[box] += fine.reshape(n[0], ov, n[1], ov, n[2], ov).mean(axis=(1, 3, 5))
    return out


def _blurred_body_background(
    grid: Grid, background_suv: float, fwhm_mm: float, oversample: int
) -> NDArray[np.float64]:
    """In-plane blurred background of the body (an elliptic cylinder along z, so the
    blur along z leaves it unchanged), voxel-averaged; one (rows, columns) slice."""
    from scipy import ndimage

    ov = oversample
    sigma = fwhm_mm / _FWHM_PER_SIGMA
    spacing = np.asarray(grid.spacing_mm)
    steps = grid.direction[1:, :2] * (spacing[1:] / ov)[:, None]
    box = (slice(0, 1), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
    w = _fine_coordinates(grid, box, ov)
    img = np.zeros((grid.shape[1] * ov, grid.shape[2] * ov))
    for (cx, cy), axes, value in ((*_BODY, background_suv), (*_RECTAL_GAS, -background_suv)):
        d = grid.origin_mm[:2] - np.array([cx, cy])
        rel = [d[x] + w[1][:, x][:, None] + w[2][:, x][None, :] for x in range(2)]
        img += value * _occupancy(rel, np.asarray(axes), steps)
    img = ndimage.gaussian_filter(img, sigma=sigma / (spacing[1:] / ov), mode="constant",
                                  truncate=_TRUNCATE_SIGMA)
    return img.reshape(grid.shape[1], ov, grid.shape[2], ov).mean(axis=(1, 3))


class DemoLesionTruth(BaseModel):
    """Known truth of one demo PET lesion (``pet_truth.json``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    site: str
    center_mm: tuple[float, float, float] = Field(description="LPS centre (mm)")
    diameter_mm: float
    volume_cc: float = Field(description="true sphere volume pi d^3 / 6 (cc)")
    suv: float = Field(description="true SUV inside the sphere")
    recovery_coefficient: float = Field(
        description="analytic SUVmax recovery of the blurred sphere at its centre"
    )
    expected_suv_max: float = Field(
        description="background + (suv - background) x recovery_coefficient: the blurred "
        "centre value before averaging over PET voxels"
    )


class DemoBladderTruth(BaseModel):
    """The demo bladder (physiologic uptake)."""

    model_config = ConfigDict(frozen=True)

    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    suv: float
    volume_cc: float


class DemoPETTruth(BaseModel):
    """What the demo PET was made from (written as ``pet_truth.json``)."""

    model_config = ConfigDict(frozen=True)

    fwhm_mm: float
    sigma_mm: float
    background_suv: float
    oversample: int
    method: str
    recovery_formula: str
    grid_shape: tuple[int, int, int]
    grid_origin_mm: tuple[float, float, float]
    grid_spacing_mm: tuple[float, float, float]
    lesions: tuple[DemoLesionTruth, ...]
    bladder: DemoBladderTruth


@dataclass(frozen=True, eq=False)
class DemoPET:
    """The synthetic PSMA-PET: SUVbw on its own grid, the bladder mask and the truth."""

    suv: NDArray[np.float64]
    grid: Grid
    bladder_mask: NDArray[np.bool_]
    truth: DemoPETTruth


def _demo_pet_grid(ct_grid: Grid, spacing_mm: Sequence[float]) -> Grid:
    """A grid of ``spacing_mm`` centred on the CT volume and covering it."""
    extent = np.array([ct_grid.slice_positions_mm[-1], *(
        (n - 1) * s for n, s in zip(ct_grid.shape[1:], ct_grid.spacing_mm[1:], strict=True))])
    sp = np.asarray(spacing_mm, dtype=float)
    shape = (np.floor(extent / sp + 1e-9).astype(int) + 1)
    centre_idx = (np.asarray(ct_grid.shape) - 1) / 2.0
    centre = ct_grid.index_to_world(centre_idx) if ct_grid.is_regular else (
        ct_grid.index_to_world(np.array([0.0, *centre_idx[1:]]))
        + ct_grid.direction[0] * extent[0] / 2.0)
    origin = centre - sum((shape[a] - 1) * sp[a] / 2.0 * ct_grid.direction[a] for a in range(3))
    return Grid(tuple(int(n) for n in shape), origin_mm=origin,  # type: ignore[arg-type]
                spacing_mm=tuple(sp), direction=ct_grid.direction)


def make_demo_pet(
    patient: DemoPatient,
    *,
    fwhm_mm: float = DEMO_PET_FWHM_MM,
    spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0),
    oversample: int = 4,
) -> DemoPET:
    """Build the demo PSMA-PET (SUVbw) of ``patient``, with partial-volume blur.

    Parameters
    ----------
    patient
        The demo patient (:func:`make_demo_patient`): the PET is in its frame of
        reference, centred on and covering its CT volume.
    fwhm_mm
        Resolution (FWHM, mm) of the Gaussian point-spread function.
    spacing_mm
        PET voxel size (slice, row, column), mm.
    oversample
        Sub-voxels per PET voxel and axis of the high-resolution truth (4: 1 mm).

    Returns
    -------
    DemoPET
        SUV on the PET grid, the bladder mask (voxel centres inside the bladder) and the
        truth (true SUV, volume and analytic recovery of every lesion of
        :data:`DEMO_LESIONS`).

    Notes
    -----
    Truth: SUV :data:`DEMO_PET_BACKGROUND_SUV` in the body ellipse of the CT (0 in the
    rectal gas and in air), the bladder :data:`DEMO_BLADDER`, and the lesions of
    :data:`DEMO_LESIONS` as uniform spheres of SUV :data:`DEMO_PET_SUV` (replacing the
    background). Blur: each object is blurred and voxel-averaged by
    :func:`blurred_ellipsoids` (1 mm truth for 4 mm voxels, Gaussian, mean over each
    PET voxel); the body, an elliptic cylinder along z, is blurred in-plane the same way.
    The image is their sum (blurring is linear). No noise is added.

    Examples
    --------
    >>> p = make_demo_patient(shape=(12, 64, 64), spacing_mm=(3.0, 6.0, 6.0))
    >>> pet = make_demo_pet(p, spacing_mm=(6.0, 6.0, 6.0), oversample=2)
    >>> pet.grid.shape, [l.id for l in pet.truth.lesions]
    ((6, 64, 64), ['L1', 'L2', 'L3', 'L4'])
    """
    grid = _demo_pet_grid(patient.grid, spacing_mm)
    bg = DEMO_PET_BACKGROUND_SUV
    body = _blurred_body_background(grid, bg, fwhm_mm, oversample)
    objects = [(DEMO_BLADDER["center_mm"], DEMO_BLADDER["semi_axes_mm"],
                DEMO_BLADDER["suv"] - bg)]
    lesions = []
    for lesion in DEMO_LESIONS:
        src = lesion["source"]
        d = float(src["diameter_mm"])
        suv = DEMO_PET_SUV[lesion["id"]]
        objects.append((src["center_mm"], (d / 2.0,) * 3, suv - bg))
        rc = recovery_coefficient(d, fwhm_mm)
        lesions.append(DemoLesionTruth(
            id=lesion["id"], site=lesion["site"], center_mm=tuple(src["center_mm"]),
            diameter_mm=d, volume_cc=math.pi * d**3 / 6.0 / 1000.0, suv=suv,
            recovery_coefficient=rc, expected_suv_max=bg + (suv - bg) * rc,
        ))
    suv_img = body[None, :, :] + blurred_ellipsoids(grid, objects, fwhm_mm,
                                                    oversample=oversample)
    k, i, j = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    world = grid.index_to_world(np.stack([k, i, j], axis=-1).astype(float))
    c = np.asarray(DEMO_BLADDER["center_mm"])
    a = np.asarray(DEMO_BLADDER["semi_axes_mm"])
    bladder = np.sum(((world - c) / a) ** 2, axis=-1) <= 1.0
    truth = DemoPETTruth(
        fwhm_mm=fwhm_mm,
        sigma_mm=fwhm_mm / _FWHM_PER_SIGMA,
        background_suv=bg,
        oversample=oversample,
        method=(
            f"truth drawn on a {oversample}x finer grid (surface voxels weighted by the "
            "fraction inside), convolved with an isotropic Gaussian (sigma = FWHM / "
            "2.3548, truncated at 4 sigma), averaged over every PET voxel; no noise"
        ),
        recovery_formula=(
            "RC = erf(R / (s sqrt 2)) - sqrt(2 / pi) (R / s) exp(-R^2 / (2 s^2)), "
            "R = d / 2, s = FWHM / 2.3548; expected_suv_max = background + (suv - "
            "background) RC"
        ),
        grid_shape=grid.shape,
        grid_origin_mm=tuple(float(v) for v in grid.origin_mm),  # type: ignore[arg-type]
        grid_spacing_mm=grid.spacing_mm,
        lesions=tuple(lesions),
        bladder=DemoBladderTruth(
            center_mm=tuple(DEMO_BLADDER["center_mm"]),
            semi_axes_mm=tuple(DEMO_BLADDER["semi_axes_mm"]),
            suv=DEMO_BLADDER["suv"],
            volume_cc=4.0 / 3.0 * math.pi * float(np.prod(a)) / 1000.0,
        ),
    )
    return DemoPET(suv=suv_img, grid=grid, bladder_mask=bladder, truth=truth)


def demo_pet_lesions(**seed: object) -> list[dict]:
    """The demo lesions as ``pet_seed`` sources at the sphere centres.

    ``seed`` overrides :data:`DEMO_PET_SEED` (``method``, ``level``, ``max_radius_mm``).

    Examples
    --------
    >>> demo_pet_lesions(level=0.5)[0]["source"]["level"]
    0.5
    """
    opts = {**DEMO_PET_SEED, **seed}
    return [
        {"id": lesion["id"], "site": lesion["site"],
         "source": {"kind": "pet_seed", "point_mm": list(lesion["source"]["center_mm"]),
                    **opts}}
        for lesion in DEMO_LESIONS
    ]


class DemoPETLesionComparison(BaseModel):
    """One demo lesion: measured on the PET versus its known truth."""

    model_config = ConfigDict(frozen=True)

    id: str
    site: str
    true_suv: float
    recovery_coefficient: float = Field(description="analytic RC at the sphere centre")
    expected_suv_max: float = Field(description="background + (true - background) x RC")
    suv_max: float = Field(description="measured SUVmax (highest voxel)")
    suv_max_ratio: float = Field(description="suv_max / expected_suv_max")
    true_volume_cc: float
    volume_cc: float = Field(description="delineated (threshold) volume")
    volume_ratio: float = Field(description="volume_cc / true_volume_cc")
    equivalent_diameter_mm: float
    partial_volume: bool = Field(description="equivalent diameter < 2 x FWHM")
    threshold_suv: float
    hot_voxels_left_out: int = Field(
        description="voxels >= threshold within max_radius_mm of the seed but not connected "
        "to the lesion (e.g. the bladder next to L4)"
    )


class DemoPETComparison(BaseModel):
    """What :func:`measure_demo_pet` returns."""

    model_config = ConfigDict(frozen=True)

    fwhm_mm: float
    background_suv: float
    suv_rules: tuple[str, ...]
    lesions: tuple[DemoPETLesionComparison, ...]
    report: dict = Field(description="the PETLesionReport (rtplan lesions --json payload)")


def measure_demo_pet(
    pet_folder: str | Path, lesions_file: str | Path, truth_file: str | Path
) -> DemoPETComparison:
    """Delineate the demo PET lesions and compare them with the known truth.

    Reads the PET series with :func:`~rtplan.imaging.load_pet`, delineates the
    ``pet_seed`` lesions of ``lesions_file`` with
    :func:`~rtplan.imaging.measure_pet_lesions` (FWHM of the truth for the
    partial-volume flag; no exclusion mask, as ``rtplan lesions`` would) and puts SUVmax
    next to the analytic expectation and the delineated volume next to the true one.

    Parameters
    ----------
    pet_folder, lesions_file, truth_file
        The ``pet`` folder, ``lesions_pet.json`` and ``pet_truth.json`` written by
        :func:`write_demo_inputs`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> paths = write_demo_inputs(Path(tempfile.mkdtemp()) / "demo")
    >>> cmp = measure_demo_pet(paths["pet"], paths["lesions_pet"], paths["pet_truth"])
    >>> [(c.id, c.partial_volume) for c in cmp.lesions]
    [('L1', False), ('L2', True), ('L3', False), ('L4', True)]
    """
    from pydantic import ValidationError

    from rtplan._shared.jsonio import load_json
    from rtplan.errors import from_validation_error
    from rtplan.imaging.pet import load_pet
    from rtplan.imaging.pet_lesions import measure_pet_lesions
    from rtplan.lesions import PETSeedSource, load_lesions_file

    try:
        truth = DemoPETTruth.model_validate(load_json(truth_file, "PET truth file"))
    except ValidationError as exc:
        raise from_validation_error(exc, f"PET truth file '{truth_file}'") from None
    lesions = list(load_lesions_file(lesions_file).lesions)
    pet = load_pet(pet_folder)
    report = measure_pet_lesions(pet.suv, pet.grid, lesions, fwhm_mm=truth.fwhm_mm,
                                 normalization=pet.normalization.value)
    true_by_id = {t.id: t for t in truth.lesions}
    seeds = {lesion.id: lesion.source for lesion in lesions}
    k, i, j = np.meshgrid(*[np.arange(n) for n in pet.grid.shape], indexing="ij")
    world = pet.grid.index_to_world(np.stack([k, i, j], axis=-1).astype(float))
    rows = []
    for r in report.lesions:
        t = true_by_id[r.id]
        m = r.measures
        src = seeds[r.id]
        assert isinstance(src, PETSeedSource)
        near = np.linalg.norm(world - np.asarray(src.point_mm), axis=-1) <= src.max_radius_mm
        hot = int(np.count_nonzero(near & (pet.suv >= r.threshold_suv)))
        rows.append(DemoPETLesionComparison(
            id=r.id, site=r.site.value, true_suv=t.suv,
            recovery_coefficient=t.recovery_coefficient, expected_suv_max=t.expected_suv_max,
            suv_max=m.suv_max, suv_max_ratio=m.suv_max / t.expected_suv_max,
            true_volume_cc=t.volume_cc, volume_cc=m.volume_cc,
            volume_ratio=m.volume_cc / t.volume_cc,
            equivalent_diameter_mm=m.equivalent_diameter_mm,
            partial_volume=m.partial_volume_warning, threshold_suv=r.threshold_suv,
            hot_voxels_left_out=hot - m.n_voxels,
        ))
    return DemoPETComparison(
        fwhm_mm=truth.fwhm_mm, background_suv=truth.background_suv, suv_rules=pet.rules,
        lesions=tuple(rows), report=report.model_dump(mode="json"),
    )


def write_demo_inputs(
    folder: str | Path, *, overwrite: bool = False, with_pet: bool = True
) -> dict[str, Path]:
    """Write the demo CT series, the ENI atlas RTSTRUCT, the lesions files and the PET.

    Returns the paths: ``ct`` (folder), ``eni`` (RTSTRUCT), ``lesions`` (JSON, sphere
    sources) and, with ``with_pet``, ``pet`` (PET series folder, same study and frame of
    reference as the CT; :data:`DEMO_PET_ACQUISITION`), ``pet_truth`` (JSON,
    :class:`DemoPETTruth`) and ``lesions_pet`` (JSON, the same lesions as ``pet_seed``
    sources at the sphere centres, :data:`DEMO_PET_SEED`).

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import load_ct_series
    >>> from rtplan.lesions import load_lesions_file
    >>> paths = write_demo_inputs(Path(tempfile.mkdtemp()) / "demo", with_pet=False)
    >>> sorted(paths)
    ['ct', 'eni', 'lesions']
    >>> load_ct_series(paths["ct"]).grid.shape          # make_demo_patient's default
    (60, 256, 256)
    >>> spec = load_lesions_file(paths["lesions"])
    >>> [lesion.id for lesion in spec.lesions], spec.eni.sib
    (['L1', 'L2', 'L3', 'L4'], True)
    >>> from rtplan.structures import read_rtstruct
    >>> read_rtstruct(paths["eni"]).names
    ('CTV_Elective',)
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
    common = {
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
        folder / "lesions.json", json.dumps({"lesions": DEMO_LESIONS, **common}, indent=2)
        + "\n", overwrite=overwrite,
    )
    paths = {"ct": folder / "ct", "eni": eni_path, "lesions": lesions_path}
    if not with_pet:
        return paths
    from rtplan.imaging.pet_writer import write_pet_series

    pet = make_demo_pet(patient)
    write_pet_series(
        folder / "pet", pet.suv, pet.grid, **DEMO_PET_ACQUISITION,
        patient=ct.patient, study=ct.study, study_instance_uid=ct.study_instance_uid,
        frame_of_reference_uid=ct.frame_of_reference_uid,
        series_description="rtplan synthetic PSMA-PET (demo)", overwrite=overwrite,
    )
    truth_path = atomic_write_text(
        folder / "pet_truth.json", pet.truth.model_dump_json(indent=2) + "\n",
        overwrite=overwrite,
    )
    lesions_pet_path = atomic_write_text(
        folder / "lesions_pet.json",
        json.dumps({"lesions": demo_pet_lesions(), **common}, indent=2) + "\n",
        overwrite=overwrite,
    )
    return {**paths, "pet": folder / "pet", "pet_truth": truth_path,
            "lesions_pet": lesions_pet_path}


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def run_demo_structures(
    paths: dict[str, Path],
    folder: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """The structure pipeline on the demo inputs: ``RS_rtplan.dcm`` and ``report.json``.

    With matplotlib installed (``rtplan[plot]``) the structure QA images go to ``qa/``.

    :func:`~rtplan.structures.plan_targets` on the CT and lesions file of
    :func:`write_demo_inputs` (ENI and SIB from the file, body outline from the CT),
    then :func:`~rtplan.structures.write_structures`. Returns the report (JSON-ready).
    """
    from rtplan.imaging.ct import load_ct_series
    from rtplan.lesions import load_lesions_file
    from rtplan.structures.pipeline import (
        check_structure_outputs,
        input_paths,
        plan_targets,
        write_structures,
    )

    say = progress or (lambda _msg: None)
    out = Path(folder)
    spec = load_lesions_file(paths["lesions"])
    inputs = input_paths(spec, paths["ct"], paths["lesions"])
    rs, report = out / "RS_rtplan.dcm", out / "report.json"
    qa = out / "qa" if _has_matplotlib() else None
    check_structure_outputs(rs, report, inputs=inputs, overwrite=overwrite, qa=qa)
    say(f"loading CT from {paths['ct']}")
    ct = load_ct_series(paths["ct"])
    targets = plan_targets(ct, spec, progress=say)
    rep = write_structures(targets, ct, rs, report=report, overwrite=overwrite,
                           inputs=inputs, progress=say, qa=qa)
    return rep.model_dump(mode="json", exclude={"pet"} if rep.pet is None else set())
