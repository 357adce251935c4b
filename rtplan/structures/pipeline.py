"""The structure pipeline: planning CT + lesions -> targets -> RTSTRUCT and report.

:func:`plan_targets` does everything ``rtplan structures`` does except writing: the PET
frame of reference (a registration, whichever way it was stated), exclusion regions on
the PET grid, the body outline, the targets (:func:`~rtplan.structures.build_targets`:
GTV -> CTV -> PTV per lesion with the margins of :mod:`rtplan.structures.margins`, ENI
and SIB, the body crop of :mod:`rtplan.structures.body`) and the report's ``"pet"``
section. :func:`write_structures` contours the targets and writes the RTSTRUCT and the
JSON report, both or neither; :func:`check_structure_outputs` refuses bad outputs before
anything is computed. The command line only parses its options, calls these and prints.

Errors name the keyword arguments (``pet=``, ``registration=``, ``body='none'``); the
command line maps them to its options.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtplan._shared.io import (
    atomic_write_text,
    check_not_input,
    check_outputs,
    check_writable,
)
from rtplan.errors import InputError, OutputError, OutputExistsError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.pet import PETVolume
from rtplan.imaging.registration import RigidTransform, SpatialRegistration, transform_between
from rtplan.lesions import ENISpec, LesionsFile, MarginSpec, MaskSource, RTStructSource
from rtplan.structures.report import (
    ExclusionSummary,
    PETUse,
    RegistrationSummary,
    StructuresReport,
)
from rtplan.structures.rtstruct import write_rtstruct
from rtplan.structures.sources import pet_to_ct_transform
from rtplan.structures.targets import TargetSet, build_targets, targets_to_rois
from rtplan.structures.transfer import ExclusionMask, exclusion_mask, into_frame

__all__ = [
    "check_structure_outputs",
    "input_paths",
    "plan_targets",
    "write_structures",
]

PathArg = str | os.PathLike[str]


def plan_targets(
    ct: CTSeries,
    lesions: LesionsFile,
    *,
    margins: MarginSpec | None = None,
    eni: ENISpec | None = None,
    body: str | NDArray[np.bool_] | None = "auto",
    inside_skin_mm: float = 0.0,
    pet: PETVolume | None = None,
    registration: SpatialRegistration | RigidTransform | NDArray[np.float64] | None = None,
    exclude: Sequence[RTStructSource | MaskSource] = (),
    progress: Callable[[str], None] | None = None,
) -> TargetSet:
    """Targets of one patient on the planning CT, as ``rtplan structures`` builds them.

    Parameters
    ----------
    ct
        The planning CT (:func:`~rtplan.imaging.load_ct_series`).
    lesions
        The lesions file (:func:`~rtplan.lesions.load_lesions_file`).
    margins, eni
        Replace the lesions file's ``margins`` / ``eni`` sections when given.
    body
        ``"auto"`` (outline found on the CT), ``"none"``/None (no cropping), or a
        boolean body mask on the CT grid (e.g. an RTSTRUCT ROI through
        :func:`~rtplan.structures.rtstruct_masks`).
    inside_skin_mm
        Pull targets this many mm inside the skin.
    pet
        The PET (:func:`~rtplan.imaging.load_pet`) for ``pet_seed`` lesions.
    registration
        Relates the PET's frame of reference to the CT's when they differ: a DICOM
        Spatial Registration (:func:`~rtplan.imaging.load_spatial_registration`) or a
        rigid transform stated PET -> CT (:func:`~rtplan.imaging.load_matrix`; a
        transform whose frames say CT -> PET is inverted).
    exclude
        Regions no PET delineation may include (RTSTRUCT ROIs in any registered frame,
        NIfTI masks on the PET or CT grid).
    progress
        Called with a short message before each long step.

    Returns
    -------
    TargetSet
        Targets, warnings, the body mask and, with a PET, what was done with it
        (``pet``: frame, registration applied, exclusion).

    Raises
    ------
    InputError
        ``registration`` or ``exclude`` without ``pet``; a target the body crop removes
        (or a GTV more than half outside the body); see
        :func:`~rtplan.structures.build_targets`.

    Examples
    --------
    A sphere GTV of radius 5 mm with the default margins 3 + 3 mm: PTV radius 11 mm,
    4/3 pi 11^3 mm3 = 5.575 cc.

    >>> import os, tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> g = Grid((20, 40, 40), origin_mm=(-30, -20, -20), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(os.path.join(tempfile.mkdtemp(), "ct"), np.zeros(g.shape), g)
    >>> spec = LesionsFile.model_validate({"lesions": [{"id": "L1", "site": "bone",
    ...     "source": {"kind": "sphere", "center_mm": [0.3, -0.2, 0.5], "diameter_mm": 10}}]})
    >>> ts = plan_targets(ct, spec, body="none")
    >>> [t.name for t in ts.targets], round(ts.by_name("PTV1_Bone").volume_cc(), 2)
    (['GTV1_Bone', 'CTV1_Bone', 'PTV1_Bone'], 5.58)
    """
    say = progress or (lambda _msg: None)
    if margins is not None:
        lesions = lesions.model_copy(update={"margins": margins})
    if pet is None:
        given = [k for k, v in (("registration=", registration), ("exclude=", exclude))
                 if v is not None and not (isinstance(v, Sequence) and len(v) == 0)]
        if given:
            raise InputError(f"{', '.join(given)} apply to the PET: give pet= too")
        tf = None
        excl = None
    else:
        tf = _pet_to_ct(pet, ct, registration)
        excl = None
        if exclude:
            say("exclusion regions onto the PET grid")
            sro = registration if isinstance(registration, SpatialRegistration) else None
            to_pet = into_frame(pet.frame_of_reference_uid, registration=sro, transform=tf)
            excl = exclusion_mask(list(exclude), pet.grid,
                                  pet_frame_uid=pet.frame_of_reference_uid, to_pet=to_pet,
                                  ct=ct)
    targets = build_targets(
        lesions, ct, eni=eni, body=body, inside_skin_mm=inside_skin_mm, pet=pet,
        pet_transform=tf, pet_exclusion=None if excl is None else excl.mask, progress=say,
    )
    if pet is None:
        return targets
    return dataclasses.replace(targets, pet=_pet_use(pet, tf, excl))


def _pet_to_ct(
    pet: PETVolume,
    ct: CTSeries,
    registration: SpatialRegistration | RigidTransform | NDArray[np.float64] | None,
) -> RigidTransform | None:
    """The PET -> CT transform, or None (same frame and none given)."""
    if isinstance(registration, SpatialRegistration):
        return transform_between(pet.frame_of_reference_uid, ct.frame_of_reference_uid,
                                 registration=registration)
    return pet_to_ct_transform(pet, ct, registration)


def _pet_use(pet: PETVolume, tf: RigidTransform | None,
             excl: ExclusionMask | None) -> PETUse:
    return PETUse(
        series_instance_uid=pet.series_instance_uid,
        frame_of_reference_uid=pet.frame_of_reference_uid,
        registration=None if tf is None else RegistrationSummary(**tf.describe()),
        exclusion=None if excl is None else ExclusionSummary(
            sources=list(excl.parts), pet_voxels=excl.n_voxels),
    )


def input_paths(
    lesions: LesionsFile,
    *others: PathArg | None,
    exclude: Sequence[RTStructSource | MaskSource] = (),
) -> list[PathArg]:
    """Every file a structure run reads: ``others`` (CT folder, lesions file, PET
    folder, registration, ...) and the files the lesions, ENI and exclusion sources
    name. Outputs may be none of them (:func:`check_structure_outputs`).

    Examples
    --------
    >>> spec = LesionsFile.model_validate({"lesions": [{"id": "L1", "site": "bone",
    ...     "source": {"kind": "rtstruct", "path": "/data/RS.dcm", "roi": "GTV"}}]})
    >>> input_paths(spec, "/data/CT", None)
    ['/data/CT', '/data/RS.dcm']
    """
    paths: list[PathArg | None] = list(others)
    sources: list[object] = [lesion.source for lesion in lesions.lesions]
    if lesions.eni is not None and lesions.eni.ctv is not None:
        sources.append(lesions.eni.ctv)
    sources += list(exclude)
    # every file-based source kind has a ``path`` (made absolute by load_lesions_file)
    paths += [getattr(src, "path", None) for src in sources]
    return [p for p in paths if p]


def check_structure_outputs(
    output: PathArg,
    report: PathArg | None = None,
    *,
    inputs: Sequence[PathArg | None] = (),
    overwrite: bool = False,
    qa: PathArg | None = None,
) -> None:
    """Refuse outputs before anything is computed.

    An output that is one of ``inputs`` (or lies in an input folder) is refused even
    with ``overwrite``; an existing output without ``overwrite``; the report and the
    RTSTRUCT at one path. ``qa`` (a folder for QA images) must not be an input, a file
    or, without ``overwrite``, a non-empty folder; it needs matplotlib (``rtplan[plot]``).

    Raises
    ------
    OutputError

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "CT").mkdir()
    >>> check_structure_outputs(d / "RS.dcm", d / "report.json", inputs=[d / "CT"])
    >>> check_structure_outputs(d / "CT" / "RS.dcm", inputs=[d / "CT"])
    Traceback (most recent call last):
    ...
    rtplan.errors.OutputError: output '...RS.dcm' is ... input ...
    """
    ins = [p for p in inputs if p]
    check_not_input(output, *ins)
    check_writable(output, overwrite=overwrite)
    if report is not None:
        check_not_input(report, *ins)
        if Path(report).resolve() == Path(output).resolve():
            raise OutputError(
                f"report= '{report}' is the RTSTRUCT output (output=) too: give two "
                "different files"
            )
        check_writable(report, overwrite=overwrite)
    # and their folders exist or can be created, and are writable (all or nothing)
    check_outputs(output, report, inputs=ins, overwrite=overwrite)
    if qa is not None:
        from rtplan._shared.optional import import_optional

        q = Path(qa)
        check_not_input(q, *ins)
        if q.resolve() in {Path(output).resolve(), *([Path(report).resolve()] if report else [])}:
            raise OutputError(f"qa= '{qa}' is another output too: give a folder of its own")
        if q.exists() and not q.is_dir():
            raise OutputError(f"qa= '{qa}' is a file, not a folder: give a folder for the "
                              "QA images")
        if q.is_dir() and any(q.iterdir()) and not overwrite:
            raise OutputExistsError(f"QA folder '{qa}' is not empty: choose another folder "
                                    "or allow overwriting (overwrite=True)")
        import_optional("matplotlib", feature="structure QA images (qa=)")


def write_structures(
    targets: TargetSet,
    ct: CTSeries,
    output: PathArg,
    *,
    report: PathArg | None = None,
    overwrite: bool = False,
    inputs: Sequence[PathArg | None] = (),
    progress: Callable[[str], None] | None = None,
    qa: PathArg | None = None,
) -> StructuresReport:
    """Contour the targets and write the RTSTRUCT and (optionally) the JSON report.

    Both files are written or neither: the outputs are checked first
    (:func:`check_structure_outputs`), and when the report cannot be written the
    RTSTRUCT just written is removed again (or its previous content restored). With
    ``qa`` (a folder), the structure QA images of
    :func:`~rtplan.structures.qa.write_structure_qa` (per lesion: axial, coronal and
    sagittal CT through the GTV centre with the contours; ``index.html``) are written
    there too: drawn into a staging folder before the RTSTRUCT is written and moved in
    only when the RTSTRUCT and report are written.

    Returns
    -------
    StructuresReport
        With ``contour_volume_cc`` of every structure and ``rtstruct`` = ``output``.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> d = Path(tempfile.mkdtemp())
    >>> g = Grid((20, 40, 40), origin_mm=(-30, -20, -20), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(d / "ct", np.zeros(g.shape), g)
    >>> spec = LesionsFile.model_validate({"lesions": [{"id": "L1", "site": "bone",
    ...     "source": {"kind": "sphere", "center_mm": [0, 0, 0], "diameter_mm": 10}}]})
    >>> rep = write_structures(plan_targets(ct, spec, body="none"), ct, d / "RS.dcm",
    ...                        report=d / "report.json")
    >>> [s.name for s in rep.structures], (d / "report.json").is_file()
    (['GTV1_Bone', 'CTV1_Bone', 'PTV1_Bone'], True)
    """
    say = progress or (lambda _msg: None)
    check_structure_outputs(output, report, inputs=inputs, overwrite=overwrite, qa=qa)
    rois = targets_to_rois(targets, progress=say)
    rep = targets.report_model(rois, rtstruct=str(output))
    text = json.dumps(
        rep.model_dump(mode="json", exclude={"pet"} if rep.pet is None else set()),
        indent=2) + "\n"
    out = Path(output)
    staging = None
    if qa is not None:
        from rtplan.structures.qa import write_structure_qa

        say(f"drawing QA images for {qa}")
        qa_dir = Path(qa)
        qa_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{qa_dir.name}.", suffix=".tmp",
                                        dir=qa_dir.parent))
        try:
            write_structure_qa(ct, rois, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    previous = out.read_bytes() if report is not None and out.is_file() else None
    try:
        say(f"writing {output}")
        write_rtstruct(out, ct, rois, overwrite=overwrite)
        if report is not None:
            try:
                atomic_write_text(report, text, overwrite=overwrite)
            except BaseException:
                if previous is None:
                    out.unlink(missing_ok=True)
                else:
                    out.write_bytes(previous)
                raise
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging is not None and qa is not None:
        qa_dir = Path(qa)
        qa_dir.mkdir(exist_ok=True)
        # images of an earlier run (overwrite=True) would stand beside the new index
        for old in [*qa_dir.glob("qa_*.png"), qa_dir / "index.html"]:
            old.unlink(missing_ok=True)
        for f in sorted(staging.iterdir()):
            os.replace(f, qa_dir / f.name)
        staging.rmdir()
        say(f"wrote QA images to {qa}")
    return rep
