"""Rigid registration between frames of reference (PET -> planning CT).

Direction convention
--------------------
A :class:`RigidTransform` maps points (LPS, mm) given in the *moving* frame of
reference into the *fixed* frame::

    [x_fixed, y_fixed, z_fixed, 1]^T = M @ [x_moving, y_moving, z_moving, 1]^T,
    M = [[R, t], [0, 0, 0, 1]],  R orthonormal, det R = +1.

For PET-guided targets the moving frame is the PET's and the fixed frame the planning
CT's: a lesion at ``p_pet`` on the PET lies at ``M @ p_pet`` on the CT. To resample a
PET mask onto the CT grid, each CT voxel centre is mapped back with ``M^-1``.

DICOM Spatial Registration (PS3.3 C.20.2)
-----------------------------------------
A Spatial Registration object (SRO, SOP Class 1.2.840.10008.5.1.4.1.1.66.1) has its own
FrameOfReferenceUID, the *Registered RCS*. Each item of its RegistrationSequence names a
frame (``FrameOfReferenceUID``) and holds one MatrixRegistrationSequence item whose
MatrixSequence matrices transform coordinates *of that item's frame into the Registered
RCS* (C.20.2.1.1: ``A_M_B`` maps a point of RCS B into RCS A). Several matrices in one
MatrixSequence are applied in item order, ``A_M_B = M_n ... M_2 M_1``. The transform
between two registered frames B and C is ``C_M_B = inv(A_M_C) @ A_M_B`` (Equation
C.20.2-3). The Registered RCS itself needs no item (identity). Usual SROs from
treatment planning systems register the moving series (item with a matrix) to the fixed
series whose frame is the SRO's own (item with the identity), but the SRO's frame may
also be a third one: both items are then needed, and both are used here.

Mistakes seen in published readers that this module avoids: taking
``RegistrationSequence[1]`` or the first non-identity matrix without looking at the
frames; multiplying the matrices of *all* items together; and inverting the matrix
because "resampling needs fixed -> moving" before it is used on points.

Examples
--------
>>> import numpy as np
>>> m = np.eye(4); m[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]; m[:3, 3] = [10, 0, 0]
>>> t = RigidTransform(m, moving_frame_uid="PET", fixed_frame_uid="CT")
>>> t.apply([1.0, 2.0, 3.0]).tolist()          # 90 deg about S, then +10 mm in x
[8.0, 1.0, 3.0]
>>> t.inverse().apply([8.0, 1.0, 3.0]).tolist()
[1.0, 2.0, 3.0]
>>> round(t.rotation_deg, 6), t.inverse().moving_frame_uid
(90.0, 'CT')
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from rtplan._shared.dicom import is_uid, read_dataset
from rtplan._shared.jsonio import loads_json, read_text
from rtplan.errors import DicomError, GeometryError, InputError, from_validation_error

__all__ = [
    "DEFORMABLE_SRO_SOP_CLASS",
    "RIGID_TOLERANCE",
    "SRO_SOP_CLASS",
    "MatrixFile",
    "RigidTransform",
    "SpatialRegistration",
    "as_rigid_transform",
    "load_matrix",
    "load_spatial_registration",
    "read_spatial_registration",
    "transform_between",
]

#: Spatial Registration Storage SOP Class UID.
SRO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
#: Deformable Spatial Registration Storage SOP Class UID (not supported).
DEFORMABLE_SRO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.3"
#: Largest |R^T R - I| element and |det R - 1| accepted as rigid (DS values carry
#: 6-16 significant digits; a 0.1 % scale is 2e-3 and is refused).
RIGID_TOLERANCE = 1e-4

_MATRIX_TYPES = ("RIGID", "RIGID_SCALE", "AFFINE")


def _rigid_problem(m: NDArray[np.float64], tol: float) -> str | None:
    """Why ``m`` is not a rigid 4 x 4 transform, or None."""
    if m.shape != (4, 4):
        return f"it is {m.shape[0]} x {m.shape[1] if m.ndim > 1 else 1}, not 4 x 4"
    if not np.all(np.isfinite(m)):
        return "it holds NaN or infinite values"
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9, rtol=0):
        return f"its last row is {np.round(m[3], 6).tolist()}, not [0, 0, 0, 1]"
    r = m[:3, :3]
    dev = float(np.max(np.abs(r.T @ r - np.eye(3))))
    if dev > tol:
        scales = np.linalg.svd(r, compute_uv=False)
        return (
            f"its 3 x 3 part is not orthonormal (scale factors "
            f"{np.round(scales, 5).tolist()}, largest |R^T R - I| {dev:.2g} > {tol:g}): "
            "a scaled, sheared or affine (RIGID_SCALE/AFFINE) registration is not rigid and "
            "would distort the delineation; export a rigid registration"
        )
    det = float(np.linalg.det(r))
    if abs(det - 1.0) > tol:
        return (
            f"its rotation has determinant {det:.6g}, not +1: it mirrors the patient "
            "(left-right flip); check the matrix"
        )
    return None


@dataclass(frozen=True, eq=False)
class RigidTransform:
    """A rigid 4 x 4 transform from the moving to the fixed frame of reference (LPS, mm).

    Parameters
    ----------
    matrix
        4 x 4 homogeneous matrix ``[[R, t], [0, 0, 0, 1]]`` applied to column vectors:
        ``p_fixed = R @ p_moving + t`` (mm). ``R`` must be orthonormal with
        determinant +1 within :data:`RIGID_TOLERANCE`.
    moving_frame_uid, fixed_frame_uid
        FrameOfReferenceUID (0020,0052) of the moving (e.g. PET) and fixed (e.g.
        planning CT) frames, or a label such as ``"PET"``/``"CT"`` when the UID is not
        known (user matrices), or empty.
    source
        Where the transform comes from (file, SRO items used), for reports.

    Raises
    ------
    GeometryError
        The matrix is not 4 x 4, its last row is not ``0 0 0 1``, or it scales, shears or
        mirrors.

    Examples
    --------
    >>> RigidTransform(np.diag([2.0, 2.0, 2.0, 1.0]))
    Traceback (most recent call last):
    ...
    rtplan.errors.GeometryError: the transform is not rigid: its 3 x 3 part is not ...
    >>> t = RigidTransform.translation([0, 0, 5], "PET", "CT")
    >>> t.apply([[0, 0, 0], [1, 1, 1]]).tolist()
    [[0.0, 0.0, 5.0], [1.0, 1.0, 6.0]]
    """

    matrix: NDArray[np.float64]
    moving_frame_uid: str = ""
    fixed_frame_uid: str = ""
    source: str = ""
    tolerance: float = field(default=RIGID_TOLERANCE, repr=False)

    def __post_init__(self) -> None:
        m = np.array(self.matrix, dtype=float)
        problem = _rigid_problem(m, self.tolerance)
        if problem:
            where = f" ({self.source})" if self.source else ""
            raise GeometryError(f"the transform{where} is not rigid: {problem}")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "moving_frame_uid", str(self.moving_frame_uid or ""))
        object.__setattr__(self, "fixed_frame_uid", str(self.fixed_frame_uid or ""))

    # -- constructors -------------------------------------------------------------
    @classmethod
    def identity(cls, frame_uid: str = "", source: str = "identity") -> RigidTransform:
        """The identity within one frame of reference."""
        return cls(np.eye(4), frame_uid, frame_uid, source)

    @classmethod
    def translation(
        cls, shift_mm: ArrayLike, moving_frame_uid: str = "", fixed_frame_uid: str = ""
    ) -> RigidTransform:
        """A pure translation ``p_fixed = p_moving + shift_mm``."""
        m = np.eye(4)
        m[:3, 3] = np.asarray(shift_mm, dtype=float).reshape(3)
        return cls(m, moving_frame_uid, fixed_frame_uid, "translation")

    # -- use ------------------------------------------------------------------------
    @property
    def rotation(self) -> NDArray[np.float64]:
        """The 3 x 3 rotation ``R``."""
        return self.matrix[:3, :3]

    @property
    def translation_mm(self) -> NDArray[np.float64]:
        """The translation ``t`` (mm)."""
        return self.matrix[:3, 3]

    @property
    def rotation_deg(self) -> float:
        """Rotation angle about the rotation axis (degrees, 0-180)."""
        c = (float(np.trace(self.rotation)) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))

    @property
    def is_identity(self) -> bool:
        """True when the transform moves no point by more than 1e-6 mm per 1 m."""
        return bool(np.allclose(self.matrix, np.eye(4), atol=1e-9, rtol=0))

    def apply(self, points_mm: ArrayLike) -> NDArray[np.float64]:
        """Map points ``[..., 3]`` (LPS, mm) from the moving into the fixed frame."""
        p = np.asarray(points_mm, dtype=float)
        if p.shape[-1:] != (3,):
            raise GeometryError(f"points must have shape (..., 3) in mm, got {p.shape}")
        return p @ self.rotation.T + self.translation_mm

    def inverse(self) -> RigidTransform:
        """The transform from the fixed back to the moving frame."""
        inv = np.eye(4)
        inv[:3, :3] = self.rotation.T
        inv[:3, 3] = -self.rotation.T @ self.translation_mm
        src = f"inverse of {self.source}" if self.source else "inverse"
        return RigidTransform(inv, self.fixed_frame_uid, self.moving_frame_uid, src,
                              self.tolerance)

    def then(self, other: RigidTransform) -> RigidTransform:
        """This transform followed by ``other`` (``other.matrix @ self.matrix``).

        Raises :class:`GeometryError` when both name the intermediate frame and the
        names differ.
        """
        a, b = self.fixed_frame_uid, other.moving_frame_uid
        if a and b and a != b:
            raise GeometryError(
                f"cannot chain a transform into frame {a} with one starting in frame {b}"
            )
        return RigidTransform(other.matrix @ self.matrix, self.moving_frame_uid,
                              other.fixed_frame_uid, f"{self.source}, then {other.source}",
                              max(self.tolerance, other.tolerance))

    def oriented(
        self,
        moving_frame_uid: str,
        fixed_frame_uid: str,
        *,
        moving_label: str = "",
        fixed_label: str = "",
    ) -> RigidTransform:
        """This transform stated as ``moving_frame_uid -> fixed_frame_uid``.

        The transform's own frames must name the requested ones, by UID or by the given
        label (``"PET"``, ``"CT"``, case-insensitive), or be empty (then the stated
        direction is taken as is); an empty requested UID (a series without
        FrameOfReferenceUID) accepts any. A transform stated in the opposite direction
        is inverted. The result carries the requested UIDs.

        Raises
        ------
        GeometryError
            The transform relates other frames.

        Examples
        --------
        >>> t = RigidTransform.translation([0, 0, 5], "CT", "PET")   # file says CT -> PET
        >>> u = t.oriented("1.2.1", "1.2.2", moving_label="PET", fixed_label="CT")
        >>> u.translation_mm.tolist(), u.moving_frame_uid, u.fixed_frame_uid
        ([0.0, 0.0, -5.0], '1.2.1', '1.2.2')
        """

        def names(x: str, uid: str, label: str) -> bool:
            # a UID names only itself; a label ("PET") names any frame of that role
            return bool(x) and (x == uid or (bool(label) and not is_uid(x)
                                             and x.lower() == label.lower()))

        def allows(x: str, uid: str, label: str) -> bool:
            return not x or not uid or names(x, uid, label)

        mv, fx = self.moving_frame_uid, self.fixed_frame_uid
        if allows(mv, moving_frame_uid, moving_label) and allows(fx, fixed_frame_uid,
                                                                  fixed_label):
            return RigidTransform(self.matrix, moving_frame_uid or mv, fixed_frame_uid or fx,
                                  self.source, self.tolerance)
        if names(mv, fixed_frame_uid, fixed_label) and names(fx, moving_frame_uid,
                                                             moving_label):
            inv = self.inverse()
            return RigidTransform(inv.matrix, moving_frame_uid, fixed_frame_uid, inv.source,
                                  self.tolerance)
        want_m = moving_label or "moving"
        want_f = fixed_label or "fixed"
        raise GeometryError(
            f"the transform ({self.source or 'no source'}) maps frame {mv or '?'} to "
            f"{fx or '?'}, but a {want_m} -> {want_f} transform is needed from frame "
            f"{moving_frame_uid or '?'} to {fixed_frame_uid or '?'}: give the registration "
            "between these two frames"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (matrix, frames, angle, translation, source)."""
        return {
            "moving_frame": self.moving_frame_uid,
            "fixed_frame": self.fixed_frame_uid,
            "matrix": [[float(v) for v in row] for row in self.matrix],
            "rotation_deg": round(self.rotation_deg, 4),
            "translation_mm": [round(float(v), 4) for v in self.translation_mm],
            "source": self.source,
        }

    def __repr__(self) -> str:
        return (
            f"RigidTransform({self.moving_frame_uid or '?'} -> {self.fixed_frame_uid or '?'}, "
            f"rotation {self.rotation_deg:.3f} deg, translation "
            f"{np.round(self.translation_mm, 3).tolist()} mm)"
        )


# ----------------------------------------------------------------------------- user matrix
class MatrixFile(BaseModel):
    """A user 4 x 4 matrix file (JSON).

    ``matrix`` maps points of ``from_frame`` to ``to_frame`` (LPS, mm, column vectors,
    row-major rows): for ``--pet-to-ct-matrix`` that is the PET (moving) frame to the
    planning CT (fixed) frame, ``p_ct = matrix @ [p_pet, 1]``. A file that states the
    opposite direction (``"from_frame": "CT", "to_frame": "PET"``) is inverted. Frames are
    the labels ``"PET"``/``"CT"`` or FrameOfReferenceUIDs. Read with :func:`load_matrix`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    matrix: tuple[tuple[float, float, float, float], ...] = Field(
        min_length=4, max_length=4,
        description="4 x 4 rows; maps from_frame points (LPS mm) to to_frame points",
    )
    from_frame: str = Field(
        min_length=1, description="moving frame: 'PET' or its FrameOfReferenceUID"
    )
    to_frame: str = Field(
        min_length=1, description="fixed frame: 'CT' or its FrameOfReferenceUID"
    )
    description: str = ""

    @field_validator("matrix", mode="before")
    @classmethod
    def _no_bool(cls, value: object) -> object:
        if isinstance(value, list | tuple) and any(
            isinstance(v, bool) for row in value if isinstance(row, list | tuple) for v in row
        ):
            raise ValueError("true/false is not a number (it would be read as 1 or 0): "
                             "give the 16 numbers")
        return value


def load_matrix(path: str | os.PathLike[str]) -> RigidTransform:
    """Read a user 4 x 4 rigid matrix: JSON (:class:`MatrixFile`) or 16 numbers of text.

    Parameters
    ----------
    path
        ``.json``: ``{"matrix": [[...4], ...4], "from_frame": "PET", "to_frame": "CT"}``;
        anything else: 16 numbers row by row (spaces, commas or newlines; ``#``
        comments), taken as mapping PET (moving) to CT (fixed) coordinates.

    Returns
    -------
    RigidTransform
        With the file's frames (labels or UIDs); see :meth:`RigidTransform.oriented`.

    Raises
    ------
    InputError
        The file is missing or not 16 numbers / a valid JSON matrix file.
    GeometryError
        The matrix is not rigid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pet_to_ct.txt"
    >>> _ = p.write_text("1 0 0 5\\n0 1 0 0\\n0 0 1 -2\\n0 0 0 1\\n")
    >>> t = load_matrix(p)
    >>> t.apply([0, 0, 0]).tolist(), t.moving_frame_uid, t.fixed_frame_uid
    ([5.0, 0.0, -2.0], 'PET', 'CT')
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"matrix file '{p}' does not exist")
    # a matrix file is 16 numbers or a small JSON document: 1 MiB is plenty
    text = read_text(p, "matrix file", max_bytes=2**20, json_text=True)
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        raw = loads_json(text, f"matrix file '{p}'")
        try:
            doc = MatrixFile.model_validate(raw)
        except ValidationError as exc:
            raise from_validation_error(exc, f"matrix file '{p}'") from None
        src = f"matrix file {p.name} ({doc.from_frame} -> {doc.to_frame})"
        _check_entries(p, [v for row in doc.matrix for v in row])
        return RigidTransform(np.array(doc.matrix), doc.from_frame, doc.to_frame, src)
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    tokens = [t for t in re.split(r"[\s,;\[\]()]+", body) if t]
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise InputError(
            f"matrix file '{p}': {bad!r} is not a number; give 16 numbers (4 rows of 4) or "
            "a JSON file with 'matrix', 'from_frame' and 'to_frame'"
        ) from None
    if len(values) != 16:
        raise InputError(
            f"matrix file '{p}' holds {len(values)} numbers; a 4 x 4 matrix needs 16 (row by "
            "row, last row 0 0 0 1)"
        )
    _check_entries(p, values)
    return RigidTransform(np.array(values).reshape(4, 4), "PET", "CT",
                          f"matrix file {p.name} (PET -> CT)")


#: Largest magnitude of a matrix entry (mm for translations; rotations lie in -1..1).
_MAX_MATRIX_ENTRY = 1e6


def _check_entries(p: Path, values: list[float]) -> None:
    """Refuse NaN, infinite and absurdly large entries before any matrix arithmetic."""
    for v in values:
        if not (math.isfinite(v) and abs(v) <= _MAX_MATRIX_ENTRY):
            raise InputError(
                f"matrix file '{p}': entry {v!r} is not a plausible value of a rigid "
                f"matrix (finite, at most {_MAX_MATRIX_ENTRY:g} in magnitude: rotations "
                "lie in -1..1, translations are mm): check the file"
            )


def _is_float(t: str) -> bool:
    try:
        float(t)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- DICOM SRO
@dataclass(frozen=True, eq=False)
class SpatialRegistration:
    """The rigid content of a DICOM Spatial Registration object.

    Attributes
    ----------
    frame_of_reference_uid
        The SRO's own FrameOfReferenceUID: the Registered RCS.
    to_registered
        Frame UID -> 4 x 4 matrix mapping that frame's coordinates into the Registered
        RCS (the MatrixSequence of its item, composed in order).
    matrix_types
        Frame UID -> FrameOfReferenceTransformationMatrixType of its matrices.
    sop_instance_uid, path
        SOPInstanceUID and file.
    notes
        Items that could not be used (e.g. no FrameOfReferenceUID), for messages.
    """

    frame_of_reference_uid: str
    to_registered: Mapping[str, NDArray[np.float64]]
    matrix_types: Mapping[str, tuple[str, ...]]
    sop_instance_uid: str = ""
    path: str = ""
    notes: tuple[str, ...] = ()

    @property
    def frames(self) -> tuple[str, ...]:
        """Every frame this object relates (the Registered RCS first)."""
        rest = sorted(f for f in self.to_registered if f != self.frame_of_reference_uid)
        return (self.frame_of_reference_uid, *rest)

    def _to_registered(self, frame: str, role: str) -> tuple[NDArray[np.float64], str]:
        if frame in self.to_registered:
            m = self.to_registered[frame]
            types = "/".join(self.matrix_types.get(frame, ())) or "no type"
            if frame == self.frame_of_reference_uid and not np.allclose(m, np.eye(4),
                                                                        atol=1e-6):
                raise DicomError(
                    f"SRO '{self.path}': the item for its own frame {frame} holds a "
                    "non-identity matrix, which contradicts PS3.3 C.20.2 (that frame is the "
                    "Registered RCS); the object is inconsistent"
                )
            return m, f"{role} frame item ({types})"
        if frame == self.frame_of_reference_uid:
            return np.eye(4), f"{role} frame = registered RCS (identity)"
        notes = ("; " + "; ".join(self.notes)) if self.notes else ""
        raise GeometryError(
            f"the Spatial Registration '{self.path}' does not register the {role} frame of "
            f"reference {frame}; frames present: {list(self.frames)} (registered RCS "
            f"{self.frame_of_reference_uid}){notes}: give the registration made for these "
            "series"
        )

    def transform(self, moving_frame_uid: str, fixed_frame_uid: str) -> RigidTransform:
        """The rigid transform from ``moving_frame_uid`` to ``fixed_frame_uid``.

        ``inv(fixed -> registered) @ (moving -> registered)`` (PS3.3 Equation C.20.2-3).

        Raises
        ------
        GeometryError
            A frame is not in the object, or a matrix used is not rigid.
        """
        if moving_frame_uid == fixed_frame_uid:
            return RigidTransform.identity(moving_frame_uid, "same frame of reference")
        m_mov, why_m = self._to_registered(moving_frame_uid, "moving")
        m_fix, why_f = self._to_registered(fixed_frame_uid, "fixed")
        name = Path(self.path).name or "SRO"
        for m, what in ((m_mov, why_m), (m_fix, why_f)):
            problem = _rigid_problem(m, RIGID_TOLERANCE)
            if problem:
                raise GeometryError(f"SRO '{self.path}', {what}: not rigid: {problem}")
        matrix = np.asarray(np.linalg.solve(m_fix, m_mov), dtype=np.float64)  # inv(m_fix) m_mov
        src = (f"SRO {name} (registered RCS {self.frame_of_reference_uid}): {why_m}, then "
               f"inverse of {why_f}")
        return RigidTransform(matrix, moving_frame_uid, fixed_frame_uid, src)


def _matrix_values(item: Dataset, where: str) -> NDArray[np.float64]:
    raw = item.get("FrameOfReferenceTransformationMatrix")
    if raw is None:
        raise DicomError(f"{where}: FrameOfReferenceTransformationMatrix (3006,00C6) is missing")
    try:
        seq = raw if isinstance(raw, list | tuple | MultiValue) else [raw]
        values = np.array([float(v) for v in seq])
    except (TypeError, ValueError) as exc:
        raise DicomError(f"{where}: unreadable FrameOfReferenceTransformationMatrix: {exc}"
                         ) from None
    if values.size != 16:
        raise DicomError(
            f"{where}: FrameOfReferenceTransformationMatrix holds {values.size} values, "
            "not 16 (4 x 4, row by row)"
        )
    return values.reshape(4, 4)


def load_spatial_registration(source: str | os.PathLike[str] | Dataset) -> SpatialRegistration:
    """Read the rigid registrations of a DICOM Spatial Registration object.

    Parameters
    ----------
    source
        SRO file (Modality REG, SOP Class 1.2.840.10008.5.1.4.1.1.66.1), or its dataset.

    Returns
    -------
    SpatialRegistration
        Per frame, the matrix into the SRO's Registered RCS.

    Raises
    ------
    DicomError
        Not an SRO; no RegistrationSequence; an item with several
        MatrixRegistrationSequence items; a matrix without 16 values or of an unknown
        type; two items for one frame with different matrices.
    GeometryError
        A Deformable Spatial Registration object.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset(); ds.SOPClassUID = SRO_SOP_CLASS; ds.FrameOfReferenceUID = "1.2.9"
    >>> item, mreg, mat = Dataset(), Dataset(), Dataset()
    >>> mat.FrameOfReferenceTransformationMatrixType = "RIGID"
    >>> mat.FrameOfReferenceTransformationMatrix = [1, 0, 0, 5, 0, 1, 0, 0, 0, 0, 1, 0,
    ...                                             0, 0, 0, 1]
    >>> mreg.MatrixSequence = [mat]; item.MatrixRegistrationSequence = [mreg]
    >>> item.FrameOfReferenceUID = "1.2.1"; ds.RegistrationSequence = [item]
    >>> sro = load_spatial_registration(ds)
    >>> sro.frames, sro.transform("1.2.1", "1.2.9").apply([0, 0, 0]).tolist()
    (('1.2.9', '1.2.1'), [5.0, 0.0, 0.0])
    """
    if isinstance(source, Dataset):
        ds, path = source, str(getattr(source, "filename", "") or "<dataset>")
    else:
        ds, path = read_dataset(source, "registration"), str(source)
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop == DEFORMABLE_SRO_SOP_CLASS or "DeformableRegistrationSequence" in ds:
        raise GeometryError(
            f"'{path}' is a Deformable Spatial Registration: only rigid registrations are "
            "supported for PET -> CT; export the rigid (matrix) registration from the "
            "planning system, or resample the PET onto the CT yourself"
        )
    if sop != SRO_SOP_CLASS:
        raise DicomError(
            f"'{path}' is not a Spatial Registration object (SOPClassUID {sop or 'missing'}, "
            f"Modality {ds.get('Modality', 'missing')}); expected SOP Class {SRO_SOP_CLASS} "
            "(Modality REG)"
        )
    registered = str(ds.get("FrameOfReferenceUID", "") or "")
    if not registered:
        raise DicomError(f"SRO '{path}': FrameOfReferenceUID (0020,0052) is missing")
    items = ds.get("RegistrationSequence") or []
    if not items:
        raise DicomError(f"SRO '{path}': RegistrationSequence (0070,0308) is missing or empty")
    to_reg: dict[str, NDArray[np.float64]] = {}
    types: dict[str, tuple[str, ...]] = {}
    notes: list[str] = []
    for n, item in enumerate(items, start=1):
        where = f"SRO '{path}' RegistrationSequence item {n}"
        mregs = item.get("MatrixRegistrationSequence") or []
        if len(mregs) != 1:
            raise DicomError(
                f"{where}: MatrixRegistrationSequence holds {len(mregs)} items; PS3.3 C.20.2 "
                "requires exactly one (one registration per item)"
            )
        mats = mregs[0].get("MatrixSequence") or []
        if not mats:
            raise DicomError(f"{where}: MatrixSequence (0070,030A) is missing or empty")
        total = np.eye(4)
        kinds = []
        for k, mat in enumerate(mats, start=1):
            kind = str(mat.get("FrameOfReferenceTransformationMatrixType", "") or "")
            if kind not in _MATRIX_TYPES:
                raise DicomError(
                    f"{where} matrix {k}: FrameOfReferenceTransformationMatrixType is "
                    f"{kind or 'missing'!r}; expected one of {list(_MATRIX_TYPES)}"
                )
            kinds.append(kind)
            # PS3.3 Equation C.20.2-2: item order is application order, M = Mn ... M2 M1
            total = _matrix_values(mat, f"{where} matrix {k}") @ total
        frame = str(item.get("FrameOfReferenceUID", "") or "")
        if not frame:
            notes.append(f"item {n} names images only (no FrameOfReferenceUID) and is unused")
            continue
        if frame in to_reg and not np.allclose(to_reg[frame], total, atol=1e-6):
            raise DicomError(
                f"{where}: a second item for frame {frame} with a different matrix; the "
                "registration is ambiguous"
            )
        to_reg[frame] = total
        types[frame] = tuple(kinds)
    return SpatialRegistration(
        frame_of_reference_uid=registered,
        to_registered=to_reg,
        matrix_types=types,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        path=path,
        notes=tuple(notes),
    )


def read_spatial_registration(
    path: str | os.PathLike[str] | Dataset, moving_frame_uid: str, fixed_frame_uid: str
) -> RigidTransform:
    """The rigid transform ``moving -> fixed`` stored in a DICOM Spatial Registration.

    Parameters
    ----------
    path
        SRO file (or dataset).
    moving_frame_uid
        FrameOfReferenceUID of the moving series (the PET).
    fixed_frame_uid
        FrameOfReferenceUID of the fixed series (the planning CT).

    Returns
    -------
    RigidTransform
        ``inv(fixed -> registered RCS) @ (moving -> registered RCS)``; an identity when
        one of the frames is the SRO's own (PS3.3 C.20.2.1.1).

    Raises
    ------
    DicomError, GeometryError
        See :func:`load_spatial_registration` and :meth:`SpatialRegistration.transform`.

    Examples
    --------
    >>> import tempfile
    >>> read_spatial_registration(tempfile.mkdtemp() + "/none.dcm", "1.2", "1.3")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: registration file '.../none.dcm' does not exist: give the ...
    """
    return load_spatial_registration(path).transform(moving_frame_uid, fixed_frame_uid)


# ----------------------------------------------------------------------------- direction
def as_rigid_transform(
    transform: RigidTransform | ArrayLike, source: str = "4 x 4 matrix"
) -> RigidTransform:
    """``transform`` as a :class:`RigidTransform` (a bare 4 x 4 matrix has no frames).

    Examples
    --------
    >>> as_rigid_transform(np.eye(4)).source
    '4 x 4 matrix'
    """
    if isinstance(transform, RigidTransform):
        return transform
    return RigidTransform(np.asarray(transform, dtype=float), source=source)


def transform_between(
    moving_frame_uid: str,
    fixed_frame_uid: str,
    *,
    registration: SpatialRegistration | None = None,
    transform: RigidTransform | ArrayLike | None = None,
    transform_maps: Literal["moving_to_fixed", "fixed_to_moving"] = "moving_to_fixed",
    moving_label: str = "",
    fixed_label: str = "",
) -> RigidTransform:
    """The one place that decides which way a registration points.

    Returns the rigid transform mapping points of ``moving_frame_uid`` into
    ``fixed_frame_uid`` (LPS mm, ``p_fixed = M @ p_moving``):

    * from a DICOM Spatial Registration: ``registration.transform(moving, fixed)``
      (PS3.3 Equation C.20.2-3);
    * from a user transform (:func:`load_matrix`, a :class:`RigidTransform` or a bare
      4 x 4 array): it is taken as stated by ``transform_maps`` (``"moving_to_fixed"``
      or ``"fixed_to_moving"``, e.g. a PET -> CT matrix used to map CT ROIs onto the
      PET) unless its own frames (UIDs, or the labels ``moving_label`` /
      ``fixed_label`` such as ``"PET"``/``"CT"``) say it is stated the other way; then
      it is inverted (:meth:`RigidTransform.oriented`). A transform naming other frames
      is refused.

    Raises
    ------
    GeometryError
        Neither ``registration`` nor ``transform`` is given (the message names both
        keywords), or the transform relates other frames.

    Examples
    --------
    A matrix file stating PET -> CT, used to bring a CT ROI onto the PET:

    >>> pet_to_ct = RigidTransform.translation([0, 0, 5], "PET", "CT")
    >>> t = transform_between("1.2.2", "1.2.1", transform=pet_to_ct,
    ...                       transform_maps="fixed_to_moving", moving_label="CT",
    ...                       fixed_label="PET")
    >>> t.apply([0, 0, 5]).tolist(), t.moving_frame_uid, t.fixed_frame_uid
    ([0.0, 0.0, 0.0], '1.2.2', '1.2.1')
    >>> transform_between("1.2.2", "1.2.1")
    Traceback (most recent call last):
    ...
    rtplan.errors.GeometryError: frame of reference 1.2.2 differs from 1.2.1 and no ...
    """
    if registration is not None:
        return registration.transform(moving_frame_uid, fixed_frame_uid)
    if transform is None:
        m = f" ({moving_label})" if moving_label else ""
        f = f" ({fixed_label})" if fixed_label else ""
        raise GeometryError(
            f"frame of reference {moving_frame_uid}{m} differs from {fixed_frame_uid}{f} "
            "and no registration is given: pass registration= (a DICOM Spatial "
            "Registration) or transform= (a 4 x 4 rigid matrix)"
        )
    tf = as_rigid_transform(transform)
    if transform_maps == "moving_to_fixed":
        return tf.oriented(moving_frame_uid, fixed_frame_uid, moving_label=moving_label,
                           fixed_label=fixed_label)
    if transform_maps == "fixed_to_moving":
        inv = tf.oriented(fixed_frame_uid, moving_frame_uid, moving_label=fixed_label,
                          fixed_label=moving_label).inverse()
        return RigidTransform(inv.matrix, moving_frame_uid, fixed_frame_uid, inv.source,
                              tf.tolerance)
    raise ValueError(f"transform_maps must be moving_to_fixed or fixed_to_moving, got "
                     f"{transform_maps!r}")
