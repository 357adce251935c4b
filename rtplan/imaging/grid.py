"""Image grids in DICOM patient coordinates (LPS, mm).

A :class:`Grid` places a volume indexed ``[slice, row, column]`` in the patient:
the centre of voxel ``(k, i, j)`` is at::

    origin_mm + offset_k * direction[0] + i * spacing_mm[1] * direction[1]
              + j * spacing_mm[2] * direction[2]

where ``direction[2]`` is DICOM's row direction cosine (ImageOrientationPatient[0:3],
the way the column index grows), ``direction[1]`` the column direction cosine
(ImageOrientationPatient[3:6], the way the row index grows), ``direction[0]`` the
slice normal, and ``offset_k`` the slice's own distance from the first slice along
the normal (``k * spacing_mm[0]`` for a regular grid; CT series may be irregular).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.errors import GeometryError, GridMismatchError

__all__ = ["AXIAL", "Grid"]

_REGULAR_TOL_MM = 1e-3

#: Direction of a head-first-supine axial series (ImageOrientationPatient 1,0,0,0,1,0):
#: slices along +z (superior), rows along +y (posterior), columns along +x (left).
AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
AXIAL.setflags(write=False)


@dataclass(frozen=True, eq=False)
class Grid:
    """Geometry of a ``[slice, row, column]`` volume in DICOM patient coordinates.

    Parameters
    ----------
    shape
        ``(slices, rows, columns)``.
    origin_mm
        LPS position (mm) of the centre of voxel ``[0, 0, 0]``
        (ImagePositionPatient of the first slice).
    spacing_mm
        ``(slice, row, column)`` spacing in mm: (slice spacing, PixelSpacing[0],
        PixelSpacing[1]). For an irregular grid ``spacing_mm[0]`` is the mean.
    direction
        3 x 3; rows are the LPS unit vectors along the slice, row and column index.
        Default: axial identity orientation (slices go +z, rows +y, columns +x).
    slice_offsets_mm
        Optional position of every slice along ``direction[0]`` relative to the first
        (starts at 0, strictly increasing). ``None`` means ``k * spacing_mm[0]``.

    Examples
    --------
    >>> g = Grid((3, 4, 5), origin_mm=(-10.0, -20.0, 30.0), spacing_mm=(2.5, 1.0, 0.5))
    >>> g.index_to_world([1, 2, 4]).tolist()
    [-8.0, -18.0, 32.5]
    >>> g.world_to_index([-8.0, -18.0, 32.5]).tolist()
    [1.0, 2.0, 4.0]
    >>> round(g.voxel_volume_mm3, 3)
    1.25
    """

    shape: tuple[int, int, int]
    origin_mm: NDArray[np.float64]
    spacing_mm: tuple[float, float, float]
    direction: NDArray[np.float64] = field(default_factory=lambda: AXIAL.copy())
    slice_offsets_mm: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(f"grid shape must be 3 positive integers, got {self.shape}")
        origin = np.asarray(self.origin_mm, dtype=float).reshape(3)
        spacing = tuple(float(s) for s in self.spacing_mm)
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise GeometryError(
                f"grid spacing must be 3 positive finite values in mm, got {self.spacing_mm}"
            )
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(direction @ direction.T, np.eye(3), atol=1e-4):
            raise GeometryError(
                f"grid direction must be orthonormal rows, got {direction.tolist()}"
            )
        offsets = self.slice_offsets_mm
        if offsets is not None:
            offsets = np.asarray(offsets, dtype=float).reshape(-1)
            if offsets.size != shape[0]:
                raise GeometryError(
                    f"{offsets.size} slice offsets given for {shape[0]} slices"
                )
            if offsets[0] != 0 or (offsets.size > 1 and np.any(np.diff(offsets) <= 0)):
                raise GeometryError(
                    "slice offsets must start at 0 and increase strictly, got "
                    f"{offsets[:5].tolist()}..."
                )
            if offsets.size > 1:
                mean = float(offsets[-1] / (offsets.size - 1))
                if np.allclose(np.diff(offsets), mean, atol=_REGULAR_TOL_MM):
                    spacing = (mean, spacing[1], spacing[2])
                    offsets = None
                else:
                    spacing = (mean, spacing[1], spacing[2])
            else:
                offsets = None
        origin.setflags(write=False)
        direction.setflags(write=False)
        if offsets is not None:
            offsets.setflags(write=False)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "origin_mm", origin)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "slice_offsets_mm", offsets)

    # -- properties -------------------------------------------------------------
    @property
    def is_regular(self) -> bool:
        """True when every slice is ``spacing_mm[0]`` from the previous one."""
        return self.slice_offsets_mm is None

    @property
    def slice_positions_mm(self) -> NDArray[np.float64]:
        """Offset of every slice along the slice normal from the first slice (mm)."""
        if self.slice_offsets_mm is None:
            return np.arange(self.shape[0], dtype=float) * self.spacing_mm[0]
        return np.array(self.slice_offsets_mm)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3 (nominal slice spacing for irregular grids)."""
        return float(np.prod(self.spacing_mm))

    @property
    def affine(self) -> NDArray[np.float64]:
        """4 x 4 matrix from ``[k, i, j, 1]`` to ``[x, y, z, 1]`` (LPS, mm).

        Raises :class:`GeometryError` for an irregular grid, which has no affine.
        """
        if not self.is_regular:
            raise GeometryError(
                "irregular slice spacing has no affine: resample to a regular grid first"
            )
        a = np.eye(4)
        a[:3, :3] = (self.direction * np.asarray(self.spacing_mm)[:, None]).T
        a[:3, 3] = self.origin_mm
        return a

    # -- coordinates ------------------------------------------------------------
    def index_to_world(self, index: ArrayLike) -> NDArray[np.float64]:
        """LPS position (mm) of fractional indices ``[..., (k, i, j)]``."""
        idx = np.asarray(index, dtype=float)
        k = idx[..., 0]
        if self.is_regular:
            dk = k * self.spacing_mm[0]
        else:
            pos = self.slice_positions_mm
            n = pos.size
            dk = np.interp(k, np.arange(n), pos)
            # linear extrapolation beyond the ends, with the end spacing
            lo, hi = k < 0, k > n - 1
            dk = np.where(lo, pos[0] + k * (pos[1] - pos[0]), dk)
            dk = np.where(hi, pos[-1] + (k - (n - 1)) * (pos[-1] - pos[-2]), dk)
        d = self.direction
        return (
            self.origin_mm
            + dk[..., None] * d[0]
            + (idx[..., 1] * self.spacing_mm[1])[..., None] * d[1]
            + (idx[..., 2] * self.spacing_mm[2])[..., None] * d[2]
        )

    def world_to_index(self, point_mm: ArrayLike) -> NDArray[np.float64]:
        """Fractional indices ``[..., (k, i, j)]`` of LPS points (mm)."""
        p = np.asarray(point_mm, dtype=float) - self.origin_mm
        local = p @ self.direction.T  # distances along slice, row, column axes
        i = local[..., 1] / self.spacing_mm[1]
        j = local[..., 2] / self.spacing_mm[2]
        if self.is_regular:
            k = local[..., 0] / self.spacing_mm[0]
        else:
            pos = self.slice_positions_mm
            n = pos.size
            k = np.interp(local[..., 0], pos, np.arange(n, dtype=float))
            lo, hi = local[..., 0] < pos[0], local[..., 0] > pos[-1]
            k = np.where(lo, local[..., 0] / (pos[1] - pos[0]), k)
            k = np.where(hi, (n - 1) + (local[..., 0] - pos[-1]) / (pos[-1] - pos[-2]), k)
        return np.stack([k, i, j], axis=-1)

    def voxel_centers_mm(self, axis: int) -> NDArray[np.float64]:
        """Coordinates (mm) of voxel centres along one index axis, from the origin."""
        if axis == 0:
            return self.slice_positions_mm
        return np.arange(self.shape[axis], dtype=float) * self.spacing_mm[axis]

    # -- derived grids ------------------------------------------------------------
    def crop(self, slices: Sequence[slice]) -> Grid:
        """Grid of the sub-volume ``volume[slices]`` (steps of 1 only).

        >>> g = Grid((10, 20, 30), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
        >>> c = g.crop((slice(2, 5), slice(0, 20), slice(10, 12)))
        >>> c.shape, c.origin_mm.tolist()
        ((3, 20, 2), [10.0, 0.0, 6.0])
        """
        starts, stops = [], []
        for s, n in zip(slices, self.shape, strict=True):
            start, stop, step = s.indices(n)
            if step != 1 or stop <= start:
                raise GeometryError(f"cannot crop with {s} on an axis of {n} voxels")
            starts.append(start)
            stops.append(stop)
        origin = self.index_to_world(np.array(starts, dtype=float))
        offsets = None
        if not self.is_regular:
            pos = self.slice_positions_mm[starts[0] : stops[0]]
            offsets = pos - pos[0]
        n_k, n_i, n_j = (int(b - a) for a, b in zip(starts, stops, strict=True))
        return Grid(
            shape=(n_k, n_i, n_j),
            origin_mm=origin,
            spacing_mm=self.spacing_mm,
            direction=self.direction,
            slice_offsets_mm=offsets,
        )

    def check_same(self, other: Grid, *, atol_mm: float = 1e-3, what: str = "grids") -> None:
        """Raise :class:`GridMismatchError` unless ``other`` is the same grid."""
        problems = []
        if self.shape != other.shape:
            problems.append(f"shape {self.shape} vs {other.shape}")
        if not np.allclose(self.origin_mm, other.origin_mm, atol=atol_mm):
            problems.append(f"origin {self.origin_mm.tolist()} vs {other.origin_mm.tolist()}")
        if not np.allclose(self.spacing_mm, other.spacing_mm, atol=atol_mm):
            problems.append(f"spacing {self.spacing_mm} vs {other.spacing_mm}")
        if not np.allclose(self.direction, other.direction, atol=1e-5):
            problems.append("direction differs")
        if self.shape[0] == other.shape[0] and not np.allclose(
            self.slice_positions_mm, other.slice_positions_mm, atol=atol_mm
        ):
            problems.append("slice positions differ")
        if problems:
            raise GridMismatchError(
                f"{what} do not match: " + "; ".join(problems)
                + ": resample one onto the other first"
            )

    def __repr__(self) -> str:
        reg = "" if self.is_regular else ", irregular slices"
        return (
            f"Grid(shape={self.shape}, origin_mm={np.round(self.origin_mm, 3).tolist()}, "
            f"spacing_mm={tuple(round(s, 4) for s in self.spacing_mm)}{reg})"
        )
