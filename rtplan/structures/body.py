"""The body outline (external contour) from a CT volume.

How the patient is told from the couch
--------------------------------------
Besides the patient a CT shows the couch top, head rests, knee and foot supports,
boards and thermoplastic masks. Above an air/tissue threshold they form one connected
object with the patient (the mask touches the face, a shoulder rests on a head-rest
block that stands on the couch), and HU do not tell them apart (on the real head-neck
CT in ``shared/data`` a head-rest block reads -50..+100 HU, like muscle, and the couch
top -300..-200 HU, like fat). Geometry does:

0. A *flat couch top* is cut away first, row by row. A couch top that is flat (a
   slab) is a band of image rows that each hold one run of above-threshold voxels at
   least ``couch_min_width_mm`` wide (400 mm: a couch top is 450-530 mm, wider than
   almost every patient's section) with the same column extent (within one pixel) on
   at least ``couch_slice_fraction`` of the slices (80 %: its cross-section does not
   change along z; a patient's does), the band's rows sharing that extent (within one
   pixel), no thicker than ``couch_max_thickness_mm`` (60 mm), and with an *edge* on
   both sides: the rows ``couch_edge_mm`` (6 mm) above and below the band are at most
   ``couch_edge_fraction`` (80 %) of its width (median over the slices), or lie
   outside the field of view. The edge is what tells a couch from the rows around the
   widest part of a wide, z-constant phantom (an elliptic cylinder 404-500 mm wide:
   those rows are also wide, flat and the same on every slice, but their width falls
   off gradually); the patient's back on the couch is narrower than the couch. On
   each slice where such a row matches the band's extent, the row is set to air. This
   separates a patient lying on the couch, however thick the couch is, and removes
   couch tops too thick for rule 2 (the review's cases: a pelvis with a flattened back
   directly on a 15 mm couch; a pelvis touching a 22-30 mm couch on four sagging
   slices; two legs 10 mm above a 25-40 mm couch, whose core was over a quarter of a
   leg's). A patient's tissue inside those rows (a patient sunk into a couch pad) is
   lost with them; a couch narrower than 400 mm, cut by the field of view to less,
   curved, or with gaps in its rows is not found here and is left to rules 1-3 (the
   head-neck CT's couch is a curved shell, 12 mm walls, and this step finds no row
   there: its outline is unchanged). ``couch_min_width_mm=0`` turns the step off.
1. *Thin* things (the mask's shell and side strips, carbon skins) go with an in-plane
   opening by a disk of ``opening_mm``: anything thinner than ``2 * opening_mm``.
2. The patient is *thick*: its **core**, the voxels at least about ``core_depth_mm``
   inside the outline on their slice, is one 3D part running through the whole scan
   (legs and arms joined to the trunk share it). Couch tops (10-20 mm) have no core;
   blocks, rests and boards a small one, separate from the patient's: the places where
   the patient touches them are shallow. So in 3D only the cores are compared: the
   largest is the patient's; another is kept only when it is at least
   ``min_part_fraction`` of the largest (the second leg of a scan that ends below the
   pelvis: each leg is about half). On the head-neck CT the patient's core is 4873 cc
   and the largest other one (a head-rest block) 15.9 cc, 0.3 %; without this rule the
   couch top and head rests made up 9.4 % of the External (706 cc).
3. On every slice, an in-plane part (after the opening) is body when it contains a kept
   core voxel: the patient's section with whatever touches it on that slice (arms
   beside the trunk, a leg below the pelvis), but not a couch top or block that is
   separate on that slice. Beyond the slices that hold a kept core (the vertex, the
   toes) a part without core is kept when at least ``end_overlap`` of it lies over the
   body on the slice before it, slice after slice outwards.
4. Holes are filled per slice (lungs, bowel gas).

Known limitation: an arm or hand separate from the trunk throughout the field of view
has a core far smaller than a quarter of the trunk's and is left out (as is anything
that is separate and small); give the body as an ROI in that case.

Speed: the work is done on the bounding box of the above-threshold voxels, on boolean
arrays, with whole-volume operations: the opening and the core erosion as erosions and
dilations by segments (shifted copies, log2 steps) over rectangles (the opening disk
is exactly the union of its rectangles; the core uses three rectangles inscribed in
the ``core_depth_mm`` disk: the two axis segments and the square of half side
``core_depth_mm / sqrt(2)``), in-plane labelling with a 3D structure that links no
slices, holes as the in-plane background parts that do not reach the border.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from rtplan.errors import InputError
from rtplan.imaging.grid import Grid
from rtplan.structures._sdf import SignedDistanceField

__all__ = ["BODY_THRESHOLD_HU", "body_mask", "fraction_inside"]

#: HU threshold between air and tissue used for the outline (air -1000, fat about -100).
BODY_THRESHOLD_HU = -350.0

#: In-plane 4-connectivity (no link between slices), for per-slice operations in 3D.
_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def _disk_rectangles(radius_px: tuple[float, float]) -> list[tuple[int, int]]:
    """Half sizes ``(h, w)`` of the centred rectangles whose union is the digital
    ellipse ``(dy / ry)^2 + (dx / rx)^2 <= 1`` (the opening disk on anisotropic pixels).
    """
    ry, rx = (max(float(r), 1e-9) for r in radius_px)
    rects: list[tuple[int, int]] = []
    for dy in range(int(np.floor(ry)) + 1):
        w = int(np.floor(rx * np.sqrt(max(0.0, 1.0 - (dy / ry) ** 2)) + 1e-9))
        if rects and rects[-1][1] == w:
            rects[-1] = (dy, w)  # a taller rectangle of the same width covers it
        else:
            rects.append((dy, w))
    return rects


def _window(a: NDArray[np.bool_], h: int, axis: int, op: np.ufunc) -> NDArray[np.bool_]:
    """``op`` (logical and/or) over the centred window ``[-h, h]`` along ``axis``, the
    outside counting as False: a binary erosion (and) or dilation (or) by a segment.
    Windows double in length by shifted copies (log2 steps)."""
    if h == 0:
        return a
    length = 2 * h + 1
    pad = [(0, 0)] * a.ndim
    pad[axis] = (h, h)
    cur = np.pad(a, pad)

    def part(x: NDArray[np.bool_], start: int, stop: int) -> NDArray[np.bool_]:
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(start, stop)
        return x[tuple(sl)]

    m = 1  # cur[i] = op over m consecutive values from i
    while 2 * m <= length:
        n = cur.shape[axis]
        cur = op(part(cur, 0, n - m), part(cur, m, n))
        m *= 2
    if m < length:
        d, n = length - m, cur.shape[axis]
        cur = op(part(cur, 0, n - d), part(cur, d, n))
    return cur


def _rect(a: NDArray[np.bool_], h: int, w: int, op: np.ufunc) -> NDArray[np.bool_]:
    return _window(_window(a, h, 1, op), w, 2, op)


def _open_in_plane(mask: NDArray[np.bool_], rects: list[tuple[int, int]]) -> NDArray[np.bool_]:
    """Per-slice binary opening by the union of ``rects`` (outside the array is empty).

    Erosion by a union of rectangles is the intersection of the erosions by each,
    dilation the union of the dilations; each rectangle is two segments.
    """
    eroded = _erode_in_plane(mask, rects)
    opened = None
    for h, w in rects:
        d = _rect(eroded, h, w, np.logical_or)
        opened = d if opened is None else np.logical_or(opened, d, out=opened)
    assert opened is not None
    return opened


def _erode_in_plane(mask: NDArray[np.bool_], rects: list[tuple[int, int]]) -> NDArray[np.bool_]:
    eroded = None
    for h, w in rects:
        e = _rect(mask, h, w, np.logical_and)
        eroded = e if eroded is None else np.logical_and(eroded, e, out=eroded)
    assert eroded is not None
    return eroded


def _plane_box(mask: NDArray[np.bool_], pad: int) -> tuple[slice, slice, slice]:
    """All slices, and the rows and columns holding ``mask`` widened by ``pad``."""
    rows = np.nonzero(mask.any(axis=(0, 2)))[0]
    cols = np.nonzero(mask.any(axis=(0, 1)))[0]
    if rows.size == 0:
        return (slice(None), slice(0, 0), slice(0, 0))
    return (slice(None),
            slice(max(int(rows[0]) - pad, 0), min(int(rows[-1]) + 1 + pad, mask.shape[1])),
            slice(max(int(cols[0]) - pad, 0), min(int(cols[-1]) + 1 + pad, mask.shape[2])))


def _label_sizes(labels: NDArray[np.int32], n: int) -> NDArray[np.int64]:
    """Voxel count of labels 1..n."""
    if n <= 256:  # few parts: count each in its box (faster than a full bincount)
        boxes = ndimage.find_objects(labels)
        return np.array([int((labels[b] == i).sum()) if b is not None else 0
                         for i, b in enumerate(boxes, start=1)], dtype=np.int64)
    return np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)


def _fill_holes_in_plane(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Fill holes slice by slice: background components not touching the slice border."""
    labels, n = ndimage.label(~mask, structure=_IN_PLANE)
    if n == 0:
        return mask
    border = np.zeros(n + 1, dtype=bool)
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        border[np.unique(edge)] = True
    border[0] = True  # label 0 is the mask itself
    return mask | ~border[labels]


def _core_rectangles(radius_px: tuple[float, float]) -> list[tuple[int, int]]:
    """Three rectangles inscribed in the ellipse of ``radius_px``: the two axis segments
    and the square of half side ``r / sqrt(2)`` (a cheap stand-in for the disk when only
    "is this point deep inside" matters)."""
    ry, rx = (float(r) for r in radius_px)
    h, w = int(np.floor(ry / np.sqrt(2.0))), int(np.floor(rx / np.sqrt(2.0)))
    return [(0, int(np.floor(rx))), (h, w), (int(np.floor(ry)), 0)]


def _couch_rows(sub: NDArray[np.bool_], pixel_mm: tuple[float, float], min_width_mm: float,
                max_thickness_mm: float, slice_fraction: float, edge_mm: float,
                edge_fraction: float) -> NDArray[np.bool_]:
    """Per slice and row, True where the row belongs to a flat couch band (the module
    docstring, step 0, gives the rule and its reasons)."""
    nz, ny, nx = sub.shape
    count = sub.sum(axis=2, dtype=np.int32)
    flat = np.zeros((nz, ny), dtype=bool)
    wide = ((count * pixel_mm[1] >= min_width_mm).sum(axis=0) >= slice_fraction * nz)
    if not wide.any():  # no row wide enough on enough slices (a quick exit)
        return flat
    cand = np.nonzero(wide)[0]
    part = sub[:, cand, :]
    first = np.zeros((nz, ny), dtype=np.int64)
    last = np.zeros((nz, ny), dtype=np.int64)
    first[:, cand] = np.argmax(part, axis=2)
    last[:, cand] = nx - 1 - np.argmax(part[:, :, ::-1], axis=2)
    width = last - first + 1
    run = (count > 0) & (count == width) & (width * pixel_mm[1] >= min_width_mm)
    rows = np.nonzero(run.sum(axis=0) >= slice_fraction * nz)[0]
    if rows.size == 0:
        return flat
    ext: dict[int, tuple[int, int]] = {}  # the row's usual extent
    for r in rows.tolist():
        f0 = int(np.median(first[run[:, r], r]))
        l0 = int(np.median(last[run[:, r], r]))
        ok = run[:, r] & (np.abs(first[:, r] - f0) <= 1) & (np.abs(last[:, r] - l0) <= 1)
        if ok.sum() >= slice_fraction * nz:
            flat[:, r] = ok
            ext[r] = (f0, l0)
    # bands: consecutive rows with the extent of the band's first row (within 1 pixel)
    bands: list[list[int]] = []
    for r in sorted(ext):
        if bands and bands[-1][-1] == r - 1 and all(
                abs(ext[r][i] - ext[bands[-1][0]][i]) <= 1 for i in (0, 1)):
            bands[-1].append(r)
        else:
            bands.append([r])
    row_count = np.median(count, axis=0)
    d = int(np.ceil(edge_mm / pixel_mm[0]))
    for band in bands:
        w = ext[band[0]][1] - ext[band[0]][0] + 1
        sides = [band[0] - d, band[-1] + d]
        slab = len(band) * pixel_mm[0] <= max_thickness_mm and all(
            not 0 <= s < ny or row_count[s] <= edge_fraction * w for s in sides)
        if not slab:
            flat[:, band] = False
    return flat


def _keep_ends(kept: NDArray[np.bool_], labels2d: NDArray[np.int32], coreless: NDArray[np.bool_],
               k_first: int, k_last: int, overlap: float) -> None:
    """Beyond the slices with a kept core (the vertex, the feet), keep in-plane parts
    with no core that lie mostly (``overlap``) over the body on the slice before them,
    slice after slice outwards. ``kept`` is updated in place."""
    steps = [(k, k - 1) for k in range(k_last + 1, kept.shape[0])]
    steps += [(k, k + 1) for k in range(k_first - 1, -1, -1)]
    for k, prev in steps:
        lab = labels2d[k]
        under = np.bincount(lab[kept[prev]], minlength=coreless.size)
        area = np.bincount(lab.ravel(), minlength=coreless.size)
        take = coreless & (under >= overlap * np.maximum(area, 1))
        take[0] = False
        if not take.any():
            break
        kept[k] |= take[lab]


def body_mask(
    volume_hu: ArrayLike,
    grid: Grid,
    *,
    threshold_hu: float = BODY_THRESHOLD_HU,
    opening_mm: float = 3.0,
    core_depth_mm: float = 10.0,
    min_part_fraction: float = 0.25,
    end_overlap: float = 0.5,
    couch_min_width_mm: float = 400.0,
    couch_max_thickness_mm: float = 60.0,
    couch_slice_fraction: float = 0.8,
    couch_edge_mm: float = 6.0,
    couch_edge_fraction: float = 0.8,
) -> NDArray[np.bool_]:
    """Boolean mask ``[slice, row, column]`` of the patient's body (couch left out).

    Threshold at ``threshold_hu``; cut away the rows of a flat couch top (wide rows
    of the same extent on most slices, in a band of at most ``couch_max_thickness_mm``
    with narrow rows ``couch_edge_mm`` beyond it); open each slice with a disk of
    radius ``opening_mm`` (drops everything thinner than ``2 * opening_mm``: masks,
    carbon skins); find the core (voxels about ``core_depth_mm`` deep inside the
    outline on their slice) and its 3D parts; keep the largest core part (the patient,
    legs and arms joined to it) and any other of at least ``min_part_fraction`` of its
    volume (a second leg); on each slice keep the parts that contain a kept core
    voxel, and beyond the cored slices the parts lying mostly (``end_overlap``) over
    the body of the slice before;
    fill holes per slice. The module docstring gives the reasoning and the figures of
    the real head-neck CT (couch top and head rests left out, 6840 cc of patient).

    Parameters
    ----------
    volume_hu
        CT volume in HU, indexed ``[slice, row, column]`` (any real dtype).
    grid
        Its grid (pixel spacing, mm, for the disk and the depths).
    threshold_hu
        Air/tissue threshold (HU).
    opening_mm
        Radius (mm) of the in-plane opening disk.
    core_depth_mm
        In-plane depth (mm) of the core (a voxel is core when three rectangles
        inscribed in the disk of this radius fit inside the outline around it: the
        depth is between ``core_depth_mm / sqrt(2)`` and ``core_depth_mm``).
    min_part_fraction
        Core volume of a part separate from the patient's in 3D, as a fraction of the
        largest core part, needed to keep it.
    end_overlap
        Fraction of a part without core, beyond the cored slices, that must lie over
        the body of the neighbouring slice for it to be kept.
    couch_min_width_mm
        Least width (mm) of a row of a flat couch top; 0 turns the flat-couch step
        off (module docstring, step 0).
    couch_max_thickness_mm
        Greatest thickness (mm, rows) of a flat couch band.
    couch_slice_fraction
        Fraction of the slices on which a couch row must have its usual extent.
    couch_edge_mm
        Distance (mm) above and below the band of the rows that must be narrow.
    couch_edge_fraction
        Greatest width of those rows (median over the slices) as a fraction of the
        band's width.

    Returns
    -------
    numpy.ndarray
        Boolean mask on ``grid``.

    Raises
    ------
    InputError
        If the volume does not match the grid, or no voxel is above the threshold.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> vol = np.full((3, 40, 40), -1000.0)
    >>> yy, xx = np.mgrid[:40, :40]
    >>> vol[:, (yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = 0.0     # a cylinder, r 10 px
    >>> vol[:, 18:22, 18:22] = -1000.0                           # air inside: filled
    >>> m = body_mask(vol, Grid((3, 40, 40), (0, 0, 0), (3, 1, 1)))
    >>> int(m[1].sum()) == int(((yy - 20) ** 2 + (xx - 20) ** 2 <= 100).sum())
    True

    Two legs (discs of radius 40 mm) never joined in the field of view, and a couch (a
    slab 8 mm thick) on 2 mm pixels: both legs are kept, the couch is not:

    >>> vol = np.full((2, 80, 100), -1000.0)
    >>> yy, xx = np.mgrid[:80, :100] * 2.0
    >>> for cx in (50.0, 150.0):
    ...     vol[:, (yy - 70) ** 2 + (xx - cx) ** 2 <= 40**2] = 20.0
    >>> vol[:, 56:60, :] = 200.0                                 # couch, y 112-118 mm
    >>> m = body_mask(vol, Grid((2, 80, 100), (0, 0, 0), (5, 2, 2)))
    >>> bool(m[0, 35, 25] and m[0, 35, 75]), bool(m[0, 57, 50])
    (True, False)

A pelvis (ellipse 340 x 180 mm) resting with a flattened back directly on a couch top
30 mm thick and 500 mm wide (the field of view): the couch's rows are cut away:

    >>> vol = np.full((4, 130, 250), -1000.0)
    >>> yy, xx = np.mgrid[:130, :250] * 2.0
    >>> pelvis = (((xx - 250) / 170) ** 2 + ((yy - 100) / 90) ** 2 <= 1) & (yy <= 180)
    >>> vol[:, pelvis] = 20.0
    >>> vol[:, 91:106, :] = -250.0                              # couch, y 182-210 mm
    >>> m = body_mask(vol, Grid((4, 130, 250), (0, 0, 0), (3, 2, 2)))
    >>> bool(m[:, 91:106].any()), bool(m[:, 50, 125].all())
    (False, True)
    >>> bool(body_mask(vol, Grid((4, 130, 250), (0, 0, 0), (3, 2, 2)),
    ...                couch_min_width_mm=0)[:, 91:106].any())     # the step off
    True
    """
    vol = np.asarray(volume_hu)
    if vol.shape != grid.shape:
        raise InputError(f"volume shape {vol.shape} does not match grid shape {grid.shape}")
    above = vol > threshold_hu
    if not above.any():
        raise InputError(
            f"no voxel above {threshold_hu:g} HU: is this a CT in Hounsfield units? "
            "Give the body as an ROI or use --body none"
        )
    # work on the bounding box of the above-threshold voxels, one pixel of air around
    rows = np.nonzero(above.any(axis=(0, 2)))[0]
    cols = np.nonzero(above.any(axis=(0, 1)))[0]
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, vol.shape[1])
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, vol.shape[2])
    sub = np.ascontiguousarray(above[:, r0:r1, c0:c1])
    del above
    pixel_mm = (float(grid.spacing_mm[1]), float(grid.spacing_mm[2]))
    if couch_min_width_mm > 0:
        flat = _couch_rows(sub, pixel_mm, couch_min_width_mm, couch_max_thickness_mm,
                           couch_slice_fraction, couch_edge_mm, couch_edge_fraction)
        sub[flat] = False
    rects = _disk_rectangles((opening_mm / pixel_mm[0], opening_mm / pixel_mm[1]))
    opened = _open_in_plane(sub, rects) if opening_mm > 0 else sub
    if not opened.any():  # a phantom thinner than the disk everywhere
        opened = sub
    # parts on each slice (in-plane connectivity, one label per slice and part)
    labels2d, n2d = ndimage.label(opened, structure=_IN_PLANE)
    core = _erode_in_plane(opened, _core_rectangles(
        (core_depth_mm / pixel_mm[0], core_depth_mm / pixel_mm[1])))
    if not core.any():  # nothing thick anywhere (a thin phantom): the largest 3D part
        core = opened
    box = _plane_box(core, pad=0)
    core_box, lab2d_box = core[box], labels2d[box]
    labels3d, n3d = ndimage.label(core_box)
    sizes = _label_sizes(labels3d, n3d)
    keep_core = np.concatenate(([False], sizes >= min_part_fraction * sizes.max()))
    kept_core = keep_core[labels3d]
    del labels3d
    keep2d = np.zeros(n2d + 1, dtype=bool)
    keep2d[np.unique(lab2d_box[kept_core])] = True
    keep2d[0] = False
    has_core = np.zeros(n2d + 1, dtype=bool)
    has_core[np.unique(lab2d_box[core_box])] = True
    kept = keep2d[labels2d]
    ks = np.nonzero(kept_core.any(axis=(1, 2)))[0]
    _keep_ends(kept, labels2d, ~has_core, int(ks[0]), int(ks[-1]), end_overlap)
    box = _plane_box(kept, pad=1)  # holes: background parts not reaching the border
    body = np.zeros(kept.shape, dtype=bool)
    body[box] = _fill_holes_in_plane(np.ascontiguousarray(kept[box]))
    out = np.zeros(vol.shape, dtype=bool)
    out[:, r0:r1, c0:c1] = body
    return out


def fraction_inside(
    structure: NDArray[np.bool_] | SignedDistanceField, body: ArrayLike
) -> float:
    """Fraction (0-1) of a structure's volume that lies inside the body mask.

    Parameters
    ----------
    structure
        A boolean mask on the body's grid (voxels counted), or a signed distance field
        on it (its volume inside the body's voxel boxes over its whole volume, as
        :func:`~rtplan.structures.crop_to_mask` and
        :func:`~rtplan.structures.volume_cc` measure them).
    body
        Boolean body mask (e.g. from :func:`body_mask`).

    Returns
    -------
    float
        The fraction; 0.0 for an empty structure.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> body = np.zeros(g.shape, bool); body[:, :, :20] = True  # x < -0.5 mm
    >>> round(fraction_inside(sdf_from_sphere(g, (-0.5, 0, 0), 8.0), body), 2)  # half
    0.5
    >>> m = np.zeros(g.shape, bool); m[5, 5, 15:25] = True
    >>> fraction_inside(m, body)
    0.5
    """
    b = np.asarray(body, dtype=bool)
    if isinstance(structure, SignedDistanceField):
        from rtplan.structures.contouring import volume_cc
        from rtplan.structures.margins import crop_to_mask

        if b.shape != structure.grid.shape:
            raise InputError(f"body mask shape {b.shape} does not match the structure's "
                             f"grid {structure.grid.shape}")
        total = volume_cc(structure)
        if total <= 0.0:
            return 0.0
        return min(1.0, max(0.0, volume_cc(crop_to_mask(structure, b)) / total))
    m = np.asarray(structure, dtype=bool)
    if m.shape != b.shape:
        raise InputError(f"mask shape {m.shape} does not match the body mask {b.shape}")
    n = int(m.sum())
    return 0.0 if n == 0 else float((m & b).sum()) / n
