"""ROI descriptions (whole derivation + version within DICOM's 64 characters) and ROI
colours (distinct, visible, never External's green), read back from the RTSTRUCT with
pydicom alone."""

import itertools

import numpy as np
import pydicom
import pytest

from rtplan import __version__
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures import PlanarContour, ROIContours, write_rtstruct
from rtplan.structures.naming import colour_for
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets, roi_description, targets_to_rois

VERSION = f"; rtplan {__version__}"


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    grid = Grid((24, 80, 80), origin_mm=(-39.5, -39.5, -34.5), spacing_mm=(3.0, 1.0, 1.0))
    return write_ct_series(tmp_path_factory.mktemp("ct") / "ct", np.full(grid.shape, 30.0),
                           grid)


def _eni(ct, path):
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    contours = [PlanarContour(k, np.column_stack([20 * np.cos(t), 20 * np.sin(t),
                                                  np.full(t.size, -34.5 + 3.0 * k)]))
                for k in range(5, 19)]
    return write_rtstruct(path, ct, [ROIContours("CTV_Elective", "CTV", (0, 0, 0), contours)])


def _written(ct, tmp_path, spec):
    rois = targets_to_rois(build_targets(LesionsFile.model_validate(spec), ct, body="none"))
    ds = pydicom.dcmread(write_rtstruct(tmp_path / "RS.dcm", ct, rois))
    desc = {r.ROIName: str(r.ROIDescription) for r in ds.StructureSetROISequence}
    colour = {r.ROIName: tuple(int(v) for v in c.ROIDisplayColor)
              for r, c in zip(ds.StructureSetROISequence, ds.ROIContourSequence, strict=True)}
    return desc, colour


def _sphere(i, site, x):
    return {"id": i, "site": site, "source": {"kind": "sphere", "center_mm": [x, 0.3, 0.4],
                                               "diameter_mm": 6.0}}


def test_descriptions_hold_the_margin_chain_and_the_version(ct, tmp_path):
    spec = {"lesions": [_sphere("L1", "pelvic_node", -20.0), _sphere("L2", "bone", 20.0)],
            "margins": {"ctv_margin_mm": 2.5, "ptv_margin_mm": 3},
            "eni": {"ctv": {"kind": "rtstruct", "path": str(_eni(ct, tmp_path / "eni.dcm")),
                            "roi": "CTV_Elective"}, "sib": True, "gap_mm": 2}}
    desc, _ = _written(ct, tmp_path, spec)
    assert desc["GTVn1"] == "lesion L1, pelvic_node: sphere" + VERSION
    assert desc["CTVn1"] == "GTVn1 + 2.5 mm (CTV)" + VERSION
    assert desc["PTVn1"] == "GTVn1 + 2.5 mm (CTV) + 3 mm (PTV)" + VERSION
    assert desc["PTVn_5100"] == "CTVn_5100 (CTV_Elective) + 5 mm (PTV)" + VERSION
    assert desc["PTV_5100"] == "PTVn_5100 - PTV_6120 - 2 mm gap" + VERSION
    assert all(len(d) <= 64 and d.endswith(VERSION) for d in desc.values())


def test_anisotropic_chain_fits_with_the_version(ct, tmp_path):
    spec = {"lesions": [_sphere("L1", "pelvic_node", 0.0)],
            "margins": {"ctv_margin_mm": [1, 2, 3, 2.5, 3, 2], "ptv_margin_mm": [3] * 5 + [2]}}
    desc, _ = _written(ct, tmp_path, spec)
    assert desc["PTVn1"] == "GTVn1+R1L2A3P2.5S3I2mm(CTV)+R3L3A3P3S3I2mm(PTV)" + VERSION
    assert len(desc["PTVn1"]) <= 64


def test_long_derivation_keeps_both_ends_and_the_version():
    chain = "union(" + ", ".join(f"PTVn{k}" for k in range(1, 30)) + ")"
    d = roi_description(chain, "12.34.56")
    assert len(d) == 64 and d.endswith("; rtplan 12.34.56")
    assert d.startswith("union(PTVn1, PTVn2") and "..." in d and "PTVn29)" in d


def _rgb_distance(a, b):
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def test_colours_are_distinct_visible_and_not_external(ct, tmp_path):
    # the audit: the 6th and 7th PTVs came out (37, 219, 52) (External's green) and
    # (37, 35, 52) (nearly black). Five lesions + ENI + SIB: 8 PTVs
    spec = {"lesions": [_sphere(f"L{k}", "pelvic_node", -24.0 + 12.0 * k) for k in range(5)],
            "eni": {"ctv": {"kind": "rtstruct", "path": str(_eni(ct, tmp_path / "eni.dcm")),
                            "roi": "CTV_Elective"}, "sib": True}}
    _, colour = _written(ct, tmp_path, spec)
    assert len(colour) == 5 * 3 + 2 + 2
    external = colour_for("EXTERNAL", 0)
    for a, b in itertools.combinations(colour.values(), 2):
        assert _rgb_distance(a, b) >= 50
    for c in colour.values():
        assert max(c) >= 150 and _rgb_distance(c, external) >= 150
    # beyond the hand-picked eight per type: still bright and away from the green
    for t in ("GTV", "CTV", "PTV"):
        more = [colour_for(t, i) for i in range(8, 24)]
        assert len(set(more)) == len(more)
        assert all(max(c) >= 200 and _rgb_distance(c, external) >= 150 for c in more)


# TG-263 target rules (Mayo et al. 2018, target nomenclature): type, then a classifier
# from p, n, sb, par, v, vas (or none), then the number, then optional "_" + a TG-263
# structure name and "_" + dose in cGy. The classifier list is the one the independent
# checkers implement (kildealab/TG263ComplianceTool target rule 2; o3-core/TG263NameChecker)
TG263_TARGET = (r"^(GTV|CTV|PTV)(p|n|sb|par|v|vas)?\d*(_Bone)?(_\d{4})?$")


def test_target_names_follow_tg263_classifiers(ct, tmp_path):
    import re

    sites = ["pelvic_node", "distant_node", "bone", "visceral", "prostate_bed", "bone"]
    spec = {"lesions": [_sphere(f"L{k}", site, -25.0 + 10.0 * k)
                        for k, site in enumerate(sites)],
            "eni": {"ctv": {"kind": "rtstruct", "path": str(_eni(ct, tmp_path / "eni.dcm")),
                            "roi": "CTV_Elective"}, "sib": True}}
    desc, _ = _written(ct, tmp_path, spec)
    names = [n for n in desc if n != "External"]
    assert names[:18:3] == ["GTVn1", "GTVn2", "GTV1_Bone", "GTV2", "GTVsb1", "GTV3_Bone"]
    for name in names:
        assert re.match(TG263_TARGET, name) and len(name) <= 16, name
    from rtplan.errors import InvalidParameterError
    from rtplan.structures.naming import target_name

    with pytest.raises(InvalidParameterError, match="not one of TG-263's"):
        target_name("GTV", "m", 1)
